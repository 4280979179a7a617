"""Certification benchmark (issue 11): iterations and seconds to a certified relative gap of
1e-2, 1e-4 and 1e-6, for plain ADMM, each technique alone and the default combination, side by
side with the interior-point solver (cvxpy + Clarabel) and scnn's augmented Lagrangian (pyscnn)
measured in the same run.

    python benchmarks/certify.py                         # ablation on every problem
    python benchmarks/certify.py --problems fmnist --peers clarabel
    python benchmarks/certify.py --problems scnn --peers scnn --configs default

"Certified at eps" is ``SolveResult.first_certified(eps)`` (``admmnn.certificate.certifies``:
the gap to the best bound so far in [-1e-12, eps] and relative cone violation <= eps). Seconds are wall-clock on a shared machine: compare them only as ratios
within one run. Results: benchmarks/results/certify_<problems>.{txt,json}.
"""
from __future__ import annotations

import os
import platform
import time
import warnings

import numpy as np

import admmnn
from admmnn import certificate
from admmnn.experiments import bench
from admmnn.experiments.problems import PROBLEMS, cvxpy_optimum
from admmnn.experiments.problems import scnn as make_scnn
from admmnn.operators import Operators

TARGETS = (1e-2, 1e-4, 1e-6)
#: "plain" is the project's earlier default without residual balancing: one penalty 0.1 on both
#: constraints, dual step 1.6, no relaxation, no acceleration
PLAIN = dict(rho=0.1, rho_ratio=1.0, gamma=1.6, alpha=1.0, anderson=0, adapt_rho=False, polish=False)
CONFIGS = {
    "plain": PLAIN,
    "scaled penalties": {**PLAIN, "rho": None, "rho_ratio": None, "gamma": 1.0},
    "over-relaxation": {**PLAIN, "gamma": 1.0, "alpha": 1.7},
    "anderson": {**PLAIN, "anderson": 5},
    "adaptive cone": {**PLAIN, "adapt_rho": True},
    "endgame": {**PLAIN, "polish": True},
    "default": {},
}
#: --quick: the smallest problem, two configurations, both peers (a missing one is skipped)
QUICK = dict(problems=["correlated"], configs=["plain", "default"], peers=["clarabel", "scnn"], max_iter=300,
             max_time=20.0)


def run_admm(X, Y, D, beta, config, max_iter, max_time):
    kw = {k: v for k, v in config.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = admmnn.solve(X, Y, D, beta, tol=min(TARGETS), max_iter=max_iter, max_time=max_time, **kw)
    h = res.history
    row = {"status": res.status, "n_iter": res.n_iter, "rel_gap": res.rel_gap,
           "objective": res.objective, "dual_bound": res.dual_bound,
           "seconds": float(h["time"][-1]), "precompute_s": res.timings.get("precompute", 0.0)}
    for eps in TARGETS:
        row[f"iter_{eps:g}"], row[f"sec_{eps:g}"] = res.first_certified(eps)
    return row


def run_clarabel(X, Y, D, beta):
    t = time.perf_counter()
    pstar, _ = cvxpy_optimum(X, Y, D, beta)
    return {"objective": float(pstar), "seconds": time.perf_counter() - t}


def run_scnn(X, Y, beta, gates):
    """pyscnn's augmented Lagrangian (its default tolerances) on the same data and gates,
    scored with admmnn's objective (true ReLU outputs) and cone violation."""
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    n = X.shape[0]
    Y2 = np.asarray(Y, float).reshape(n, -1)
    model = ConvexReLU(gates, c=Y2.shape[1])
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = optimize_model(model, AL(model), Metrics(), X, Y2, regularizer=NeuronGL1(beta / n), return_convex=True,
                                  unitize_data=False, dtype="float64")
    seconds = time.perf_counter() - t
    # optimize_model draws its own gates (its seed), whatever the model held: score and
    # compare on the patterns it actually used
    gates = np.asarray(model.G, dtype=float)
    P, C, d = gates.shape[1], Y2.shape[1], X.shape[1]
    vw = np.concatenate([np.asarray(p, dtype=float).reshape(-1) for p in model.parameters]).reshape(2, C, P, d)
    u = np.concatenate([vw[h].transpose(2, 1, 0).reshape(d, P * C) for h in (0, 1)], axis=1)  # column p*C + c
    D = (X @ gates >= 0).astype(float)
    op = Operators(X, D, Y2.shape[1])
    obj, viol = certificate.objective(op, u, Y2, beta)
    return {"objective": float(obj), "cone_violation": float(viol), "seconds": seconds, "D": D}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    ap = bench.parser(__doc__, quick=QUICK)
    ap.add_argument("--problems", nargs="+", default=["fmnist", "correlated", "tutorial", "scnn"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--peers", nargs="*", default=[], choices=["clarabel", "scnn"])
    ap.add_argument("--max-iter", type=int, default=3000)
    ap.add_argument("--max-time", type=float, default=120.0)
    args = ap.parse_args(argv)
    out = bench.Results(f"certify_{'_'.join(args.problems)}", args, __file__)
    say, record = out.say, out.record
    record.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "admmnn": admmnn.__version__,
                   "max_iter": args.max_iter, "max_time": args.max_time, "runs": []})

    say(f"certification benchmark, admmnn {admmnn.__version__}, {record['machine']}, float64, exact u-step")
    head = f"{'problem':<11}{'config':<18}" + "".join(f"{'it@' + format(e, 'g'):>10}{'s@' + format(e, 'g'):>10}" for e in TARGETS)
    say(head + f"{'status':>11}{'final gap':>11}")
    for name in args.problems:
        if name == "scnn":
            X, Y, D, beta, gates = make_scnn(return_gates=True)
        else:
            X, Y, D, beta = PROBLEMS[name]()
        for cname in args.configs:
            row = run_admm(X, Y, D, beta, CONFIGS[cname], args.max_iter, args.max_time)
            record["runs"].append({"problem": name, "config": cname, **row})
            say(f"{name:<11}{cname:<18}" + "".join(f"{fmt(row[f'iter_{e:g}'], 'd'):>10}{fmt(row[f'sec_{e:g}'], '.2f'):>10}"
                                                     for e in TARGETS) + f"{row['status']:>11}{row['rel_gap']:>11.1e}")
        ours = next((r for r in record["runs"] if r["problem"] == name and r["config"] == "default"), None)
        for peer in args.peers:
            if (peer == "clarabel" or name == "scnn") and bench.missing(peer):
                out.skip(f"{name:<11}{peer}", bench.missing(peer))
                continue
            if peer == "clarabel":
                p = run_clarabel(X, Y, D, beta)
            elif name == "scnn":
                p = run_scnn(X, Y, beta, gates)
                # admmnn's default on the same patterns as scnn used
                ours = {"problem": name, "config": "default on scnn's patterns",
                        **run_admm(X, Y, p.pop("D"), beta, CONFIGS["default"], args.max_iter, args.max_time)}
                record["runs"].append(ours)
                say(f"{name:<11}{'default, scnn D':<18}" + "".join(
                    f"{fmt(ours[f'iter_{e:g}'], 'd'):>10}{fmt(ours[f'sec_{e:g}'], '.2f'):>10}" for e in TARGETS)
                    + f"{ours['status']:>11}{ours['rel_gap']:>11.1e}")
            else:
                continue
            record["runs"].append({"problem": name, "config": peer, **p})
            line = f"{name:<11}{peer:<18}objective {p['objective']:.8g} in {p['seconds']:.2f} s"
            if "cone_violation" in p:
                line += f", cone violation {p['cone_violation']:.1e}"
            if ours is not None:
                line += f"; admmnn default objective {ours['objective']:.8g}"
                for e in (1e-4, 1e-6):
                    if ours[f"sec_{e:g}"]:
                        line += f", certified {e:g} in {ours[f'sec_{e:g}']:.2f} s ({p['seconds'] / ours[f'sec_{e:g}']:.1f}x faster)"
            say(line)
    out.write()


if __name__ == "__main__":
    main()
