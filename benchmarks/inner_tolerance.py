"""Inner (CG) tolerance schedules of a matrix-free u-step, side by side.

Fashion-MNIST 0 vs 6 (the registry's ``fmnist``: n = 1000, d = 785, P = 10,
beta = 1e-3), ``solve()`` defaults with tol = 1e-4, the given solver, one run per
option set (JSON; ``tol_fixed`` stands for a constant ``tol_schedule``). Prints
iterations to a certified gap of 1e-2 / 1e-3 / 1e-4 and the mean inner
iterations per u-step. The default option sets are the three schedules the paper
quotes: the former default 1e-2 k^-1.2, the default ({}) and 1e-6 k^-1.2.
Results: benchmarks/results/inner_tolerance.{txt,json} (the paper's macros read the JSON).

    python benchmarks/inner_tolerance.py                  # 1000 10 pcg-nystrom-block 600 and the three schedules
    python benchmarks/inner_tolerance.py 1000 10 pcg-nystrom-block 400 '{"inner_tol": 1e-2, "inner_tol_power": 1.2}' '{}'
"""
import json

import admmnn
from admmnn.experiments import bench
from admmnn.experiments.problems import problem

SPECS = ['{"inner_tol": 1e-2, "inner_tol_power": 1.2}', "{}", '{"inner_tol": 1e-6, "inner_tol_power": 1.2}']
TARGETS = (1e-2, 1e-3, 1e-4)


def main(argv=None):
    ap = bench.parser(__doc__, quick=dict(n=300, P=4, maxit=40))
    ap.add_argument("n", type=int, nargs="?", default=1000)
    ap.add_argument("P", type=int, nargs="?", default=10)
    ap.add_argument("solver", nargs="?", default="pcg-nystrom-block")
    ap.add_argument("maxit", type=int, nargs="?", default=600)
    ap.add_argument("specs", nargs="*", default=SPECS, help="option sets, JSON")
    args = ap.parse_args(argv)
    out = bench.Results("inner_tolerance", args, __file__)
    X, y, D, beta = problem("fmnist", n=args.n, P=args.P)
    out.say(f"# Fashion-MNIST 0 vs 6, n = {args.n}, P = {args.P}, beta = {beta:g}, tol 1e-4, {args.solver}, "
            f"at most {args.maxit} iterations")
    runs = []
    for spec in args.specs:
        opts = json.loads(spec)
        options = dict(opts)
        if "tol_fixed" in opts:
            v = opts.pop("tol_fixed")
            opts["tol_schedule"] = (lambda v: (lambda k: v))(v)
        with bench.Timer() as t:
            res = admmnn.solve(X, y, D, beta, solver=args.solver, tol=1e-4, max_iter=args.maxit, check_every=10, **opts)
        h = res.history
        it = {g: next((int(i) for i, r, c in zip(h["iteration"], h["rel_gap"], h["cone_violation"]) if 0 <= r <= g and c <= g), None) for g in TARGETS}
        inner = res.info.get("cg_iters_mean", res.info.get("rbcd_sweeps_mean"))
        out.say(f"{spec}: {t.seconds:.1f}s {res.status} its={res.n_iter} gap={res.rel_gap:.2e} obj={res.objective:.6e} first={it} inner={inner}")
        runs.append({"spec": spec, "options": options, "max_iter": args.maxit, "seconds": t.seconds,
                     "status": str(res.status), "n_iter": res.n_iter, "rel_gap": res.rel_gap, "objective": res.objective,
                     "first": {f"{g:g}": k for g, k in it.items()}, "inner": None if inner is None else float(inner)})
    out.record.update(n=args.n, P=args.P, beta=beta, solver=args.solver, max_iter=args.maxit, tol=1e-4, runs=runs)
    out.write()


if __name__ == "__main__":
    main()
