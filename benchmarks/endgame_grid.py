"""Every oracle problem, with every u-step solver, on NumPy, PyTorch and JAX: does the default
solve (ADMM + the endgame) certify 1e-8 in float64 and 1e-4 in float32? (issue 18)

    python benchmarks/endgame_grid.py            # the whole grid
    python benchmarks/endgame_grid.py --quick    # one problem, NumPy only

Each cell is the status, the iteration of the point returned and the certified relative gap;
the objective is compared with cvxpy + Clarabel at tightened tolerances (float64 data; the
float32 rows against the optimum of the float32-rounded data). Results:
benchmarks/results/endgame_grid.{txt,json}.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

import admmnn
from admmnn._backend import asarray
from admmnn.experiments import bench
from admmnn.experiments.problems import cvxpy_optimum, oracle_problem

KINDS = ("binary", "multiclass", "regression", "correlated")
TOL = {"float64": 1e-8, "float32": 1e-4}
QUICK = dict(kinds=["correlated"], backends=["numpy"])


def main(argv=None):
    ap = bench.parser(__doc__, quick=QUICK)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax"])
    ap.add_argument("--solvers", nargs="+", default=sorted(admmnn.ustep.SOLVERS))
    ap.add_argument("--max-time", type=float, default=120.0)
    args = ap.parse_args(argv)
    out = bench.Results("endgame_grid", args, __file__)
    out.say(f"{'problem':<11}{'dtype':<8}{'backend':<7}{'solver':<19}{'status':>10}{'iter':>6}{'rel gap':>10}"
            f"{'obj - p*':>10}{'Newton':>8}{'s':>7}")
    rows = []
    for kind in args.kinds:
        X, Y, D, beta = oracle_problem(kind)
        for dtype, tol in TOL.items():
            data = [np.asarray(a, dtype) for a in (X, Y, D)]
            pstar, _ = cvxpy_optimum(*(a.astype(np.float64) for a in data), beta, tight=True)
            for backend in args.backends:
                if not bench.available({"numpy": "numpy", "torch": "torch", "jax": "jax"}[backend]):
                    out.skip(backend, "not installed")
                    continue
                for solver in args.solvers:
                    t = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        res = admmnn.solve(*(asarray(a, backend, dtype) for a in data), beta, solver=solver, tol=tol,
                                           max_time=args.max_time)
                    row = {"problem": kind, "dtype": dtype, "backend": backend, "solver": solver,
                           "status": str(res.status), "n_iter": res.n_iter, "rel_gap": res.rel_gap,
                           "objective_error": (res.objective - pstar) / pstar,
                           "bound_valid": bool(res.dual_bound <= pstar * (1 + 1e-9)),
                           "newton_steps": sum(x["newton_steps"] for x in res.info.get("endgame_tries", [])),
                           "seconds": time.perf_counter() - t}
                    rows.append(row)
                    out.say(f"{kind:<11}{dtype:<8}{backend:<7}{solver:<19}{row['status']:>10}{row['n_iter']:>6}"
                            f"{row['rel_gap']:>10.1e}{row['objective_error']:>10.1e}{row['newton_steps']:>8}"
                            f"{row['seconds']:>7.1f}" + ("" if row["bound_valid"] else "  BOUND ABOVE p*"))
    ok = sum(r["status"] == "optimal" for r in rows)
    out.say(f"optimal in {ok} of {len(rows)}; bound above the Clarabel optimum in "
            f"{sum(not r['bound_valid'] for r in rows)}")
    out.record = {"rows": rows, "tol": TOL}
    out.write()


if __name__ == "__main__":
    main()
