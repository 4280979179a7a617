"""Every u-step solver on every shape: the measurements that the rules of
``admmnn.ustep.auto`` (``solver="auto"``) cite.

Fashion-MNIST T-shirt (0) vs shirt (6), the first n training images, standardised,
beta = 1e-3, targets +-1 (C = 1), Gaussian patterns (seed 0). d = 785 is the pixels
plus a bias; d = 101 is the top 100 principal components plus a bias. Each solver
runs in its own subprocess (its peak memory is its own) with ``solve()`` defaults,
``tol=1e-3``, until certified or ``--cap`` seconds; once a solver has certified 1e-3
in T seconds, the later ones at that shape get min(cap, 10 T) (they are slower
than 10x or they tie). Writes ``benchmarks/results/crossover.{txt,json}``: one row per
shape and solver, with the seconds to a certified gap of 1e-2 and 1e-3, the gap
reached, the seconds per iteration and the peak memory. The data come from the
registry (``admmnn.experiments.problems.binary_design``).

    python benchmarks/crossover.py [--cap 30] [--shapes 1000x785x10,...] [--solvers exact,cg,...]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

from admmnn.experiments import bench
from admmnn.experiments.problems import binary_design, with_bias

SHAPES = "1000x101x10,1000x785x10,1000x785x50,4000x101x10,4000x785x10,4000x785x50,10000x101x10,10000x785x10,10000x785x50"
SOLVERS = "exact,pcg-nystrom-block,pcg-nystrom,pcg-jacobi,cg,rbcd-nystrom,rbcd"
FIELDS = ["n", "d", "P", "C", "solver", "to_gap_1e-2_s", "to_gap_1e-3_s", "final_gap", "s_per_iter",
          "precompute_s", "iterations", "peak_mib", "status"]


def design(n, d, classes=(0, 6)):
    """(n, d) standardised Fashion-MNIST design with a bias column, and +-1 targets
    (d < 785: the top d - 1 principal components of the standardised pixels, plus the bias)."""
    X, y, _, _ = binary_design("fashion-mnist", classes, n_train=n, n_test=0)
    if d - 1 < X.shape[1] - 1:
        _, _, Vt = np.linalg.svd(X[:, :-1], full_matrices=False)
        X = with_bias(X[:, :-1] @ Vt[: d - 1].T)
    return X, y


def run_one(n, d, P, solver, max_time):
    """One solve; a dict of measurements (run in a subprocess)."""
    import admmnn

    X, y = design(n, d)
    D, _ = admmnn.gaussian_patterns(X, P, seed=0)
    res = admmnn.solve(X, y, D, 1e-3, solver=solver, tol=1e-3, max_iter=100_000, max_time=max_time)
    h = res.history

    def first(level):
        for t, g, c in zip(h["time"], h["rel_gap"], h["cone_violation"]):
            if 0 <= g <= level and c <= level:
                return float(t)
        return math.inf

    pre = res.timings.get("precompute", 0.0)
    return {"n": n, "d": d, "P": P, "C": 1, "solver": solver, "to_gap_1e-2_s": first(1e-2),
            "to_gap_1e-3_s": first(1e-3), "final_gap": float(res.rel_gap),
            "s_per_iter": (float(h["time"][-1]) - pre) / max(res.n_iter, 1), "precompute_s": pre,
            "iterations": res.n_iter, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "status": str(res.status)}


def main():
    ap = bench.parser(__doc__.split("\n")[0], quick=dict(cap=5.0, shapes="300x101x4,300x785x4", solvers="exact,cg"))
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per solver and shape")
    ap.add_argument("--shapes", default=SHAPES, help="n x d x P, comma separated")
    ap.add_argument("--solvers", default=SOLVERS)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: n,d,P,solver,max_time
    args = ap.parse_args()
    if args.one:
        n, d, P, solver, max_time = args.one.split(",")
        print(json.dumps(run_one(int(n), int(d), int(P), solver, float(max_time))))
        return
    out = bench.Results("crossover", args, __file__)
    rows, failed = [], []
    load0 = os.getloadavg()[0]
    for shape in args.shapes.split(","):
        n, d, P = (int(a) for a in shape.split("x"))
        best = math.inf
        for solver in args.solvers.split(","):
            cap = min(args.cap, 10 * best)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--one", f"{n},{d},{P},{solver},{cap}"],
                                  capture_output=True, text=True)
            if proc.returncode:
                err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
                print(f"{shape} {solver}: failed: {err}", file=sys.stderr, flush=True)
                failed.append({"shape": shape, "solver": solver, "error": err})
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            best = min(best, row["to_gap_1e-3_s"])
            print(f"{shape} {solver}: {time.perf_counter() - t:.0f} s wall, gap {row['final_gap']:.2e}, "
                  f"1e-3 at {row['to_gap_1e-3_s']:.1f} s", file=sys.stderr, flush=True)
    head = (f"# u-step solver crossover: Fashion-MNIST 0 vs 6, beta = 1e-3, C = 1, solve() defaults, tol 1e-3, "
            f"cap {args.cap:g} s per solver (10x the best time once one certified); {os.cpu_count()} CPU cores, "
            f"float64, NumPy; seconds include precompute (inf: not reached); load average {load0:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end")
    for line in [head, " | ".join(FIELDS), " | ".join("---" for _ in FIELDS)]:
        out.say(line)
    for r in rows:
        out.say(" | ".join(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in FIELDS))
    out.record.update(cap=args.cap, shapes=args.shapes, solvers=args.solvers,
                      rows=[{k: bench.finite(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows],
                      failed=failed)
    out.write()


if __name__ == "__main__":
    main()
