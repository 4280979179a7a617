"""Benchmark of the u-step solvers on real Fashion-MNIST (classes 0 vs 6).

n = 10 000 training images (first 10 000 of classes T-shirt/top = 0 and Shirt = 6;
``--n``), the 2 000 test images of those classes, d = 784 pixels + bias, standardised
with the training statistics, P = 50 Gaussian patterns, beta = 1e-3, targets -1 (T-shirt)
and +1 (shirt): the registry's ``binary_design`` (``admmnn.experiments.problems``).

For each solver, in its own subprocess (so that peak memory is its own), we
report: precompute seconds; seconds and ADMM iterations until the recovered
network reaches 97% training accuracy, and until the certified relative gap is
below 1e-2 and 1e-3 (seconds include precompute and exclude the time the
benchmark's own accuracy callback takes); final test accuracy; peak resident
memory of the process (ru_maxrss). Each solver stops at relative gap 1e-3 or
after ``--max-time`` seconds. Results: benchmarks/results/solvers_fashion_mnist.{txt,json}.

    python benchmarks/solvers_fashion_mnist.py [--max-time 150] [--solvers exact,cg,...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from admmnn.experiments import bench
from admmnn.experiments.problems import binary_design

SOLVERS = ["exact", "cg", "pcg-jacobi", "pcg-nystrom", "rbcd", "rbcd-nystrom"]


def run_one(solver, max_time, n_patterns, beta, seed, n_train=10_000):
    """Solve with one solver; returns a dict of measurements (run in a subprocess)."""
    import admmnn
    from admmnn.network import recover_network
    from admmnn.operators import Operators

    Xtr, ytr, Xte, yte = binary_design("fashion-mnist", n_train=n_train)
    D, _ = admmnn.gaussian_patterns(Xtr, n_patterns, seed=seed)
    op = Operators(Xtr, D, 1)
    marks = {"acc97": None, "gap1e-2": None, "gap1e-3": None}
    spent = {"callback": 0.0}
    t0 = time.perf_counter()

    def accuracy(net, X, y):
        return float(np.mean(np.sign(net.predict(X)[:, 0]) == y))

    def callback(k, m, st):
        tc = time.perf_counter()
        elapsed = tc - t0 - spent["callback"]
        acc = accuracy(recover_network(op, st.v), Xtr, ytr)
        for key, ok in (("acc97", acc >= 0.97), ("gap1e-2", m["rel_gap"] <= 1e-2), ("gap1e-3", m["rel_gap"] <= 1e-3)):
            if ok and marks[key] is None:
                marks[key] = (elapsed, k)
        spent["callback"] += time.perf_counter() - tc

    res = admmnn.solve(Xtr, ytr, D, beta, solver=solver, tol=1e-3, max_iter=100_000, max_time=max_time, callback=callback)
    total = time.perf_counter() - t0 - spent["callback"]
    info = res.info
    return {
        "solver": res.solver,
        "status": res.status,
        "n_iter": res.n_iter,
        "total_s": total,
        "precompute_s": res.timings.get("precompute", float("nan")),
        "marks": marks,
        "rel_gap": res.rel_gap,
        "train_acc": accuracy(res.network, Xtr, ytr),
        "test_acc": accuracy(res.network, Xte, yte),
        "inner": info.get("cg_iters_mean", info.get("rbcd_sweeps_mean")),
        "rank": info.get("nystrom_rank"),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def fmt_mark(mark):
    return "-" if mark is None else f"{mark[0]:7.1f}s/{mark[1]:>5d}"


def table(rows, header):
    cols = ["solver", "precomp s", "97% train acc", "gap 1e-2", "gap 1e-3", "iters", "final gap", "train acc", "test acc", "inner/step", "peak MiB", "status"]
    lines = [header, " | ".join(cols), " | ".join("---" for _ in cols)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['solver']} | failed: {r['error']}")
            continue
        inner = "-" if r["inner"] is None else f"{r['inner']:.1f}"
        if r["rank"] is not None:
            inner += f" (r={r['rank']})"
        lines.append(" | ".join([
            r["solver"], f"{r['precompute_s']:.1f}", fmt_mark(r["marks"]["acc97"]), fmt_mark(r["marks"]["gap1e-2"]),
            fmt_mark(r["marks"]["gap1e-3"]), str(r["n_iter"]), f"{r['rel_gap']:.1e}", f"{r['train_acc']:.4f}",
            f"{r['test_acc']:.4f}", inner, f"{r['peak_mib']:.0f}", r["status"],
        ]))
    return "\n".join(lines)


def main(argv=None):
    ap = bench.parser(__doc__.split("\n")[0], quick=dict(solvers="exact,cg", max_time=5.0, patterns=5, n=500))
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--max-time", type=float, default=150.0)
    ap.add_argument("--patterns", type=int, default=50)
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=10_000, help="the first n training images of the two classes")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one solver, print JSON
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.max_time, args.patterns, args.beta, args.seed, args.n)))
        return
    out = bench.Results("solvers_fashion_mnist", args, __file__)
    rows = []
    for solver in args.solvers.split(","):
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--one", solver, "--max-time", str(args.max_time),
               "--patterns", str(args.patterns), "--beta", str(args.beta), "--seed", str(args.seed), "--n", str(args.n)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"solver": solver, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{solver}: done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    header = (
        f"Fashion-MNIST 0 vs 6: n={args.n} train / 2000 test, d=785, P={args.patterns}, beta={args.beta}, "
        f"stop at rel gap 1e-3 or {args.max_time:.0f} s; times 's/iters' include precompute; "
        f"{os.cpu_count()} CPU cores, float64, NumPy"
    )
    for line in table(rows, header).splitlines():
        out.say(line)
    out.record.update(n=args.n, P=args.patterns, beta=args.beta, max_time=args.max_time, seed=args.seed, rows=rows)
    out.write()


if __name__ == "__main__":
    main()
