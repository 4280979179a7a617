"""Seconds per ADMM iteration and time to a relative gap, per backend and dtype.

    python benchmarks/backends.py                         # Fashion-MNIST 0 vs 6 on the CPU
    python benchmarks/backends.py --data cifar-shape --device cuda --backends torch jax

`--data fashion-mnist` is the core benchmark's problem (n = 1000, d = 784 + bias,
P = 10, beta = 1e-3). `--data cifar-shape` is a synthetic binary problem of
CIFAR-10's shape (n = 10 000, d = 3072 + bias, P = 50) for a GPU; both come from the
registry (``admmnn.experiments.problems``: ``fmnist`` and ``cifar-shape``). Results are
printed and written as JSON (a list of rows, with the device name) and text to
benchmarks/results/backends_<data>_<cpu|gpu>.{json,txt}. A backend whose package is not
installed is skipped with a message.
"""
from __future__ import annotations

import os
import platform

import numpy as np

import admmnn
from admmnn._backend import asarray, to_numpy
from admmnn.experiments import bench
from admmnn.experiments.problems import problem
from admmnn.operators import Operators
from admmnn.ustep import ExactSolver

from exact_fashion_mnist import time_products

PROBLEM = {"fashion-mnist": "fmnist", "cifar-shape": "cifar-shape"}


def device_name(backend, device):
    if device and "cuda" in device:
        import torch

        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def main(argv=None):
    ap = bench.parser(__doc__, quick=dict(n=200, patterns=4, dtypes=["float64"], max_iter=50, max_time=20.0))
    ap.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "cifar-shape"])
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--patterns", type=int, default=None)
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax"])
    ap.add_argument("--solvers", nargs="+", default=["exact"], help="u-step solvers (each on every backend)")
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--device", default=None, help="e.g. cuda (torch) or gpu (jax)")
    ap.add_argument("--max-iter", type=int, default=2000)
    ap.add_argument("--max-time", type=float, default=120.0)
    args = ap.parse_args(argv)
    n = args.n or (1000 if args.data == "fashion-mnist" else 10000)
    P = args.patterns or (10 if args.data == "fashion-mnist" else 50)
    out = bench.Results(f"backends_{args.data}_{'gpu' if args.device else 'cpu'}", args, __file__)
    X, y, D, _ = problem(PROBLEM[args.data], n=n, P=P, beta=args.beta)
    rows = []
    backends = [b for b in args.backends if b == "numpy" or not bench.missing(b)]
    for b in set(args.backends) - set(backends):
        out.skip(b, bench.missing(b))
    runs = [(s, b, t) for s in args.solvers for b in backends for t in args.dtypes if not (b == "numpy" and args.device)]
    for solver, backend, dtype in runs:
        Xb, yb, Db = (asarray(a, backend, dtype, args.device if backend == "torch" else None) for a in (X, y, D))
        res = admmnn.solve(Xb, yb, Db, args.beta, solver=solver, max_iter=args.max_iter, max_time=args.max_time,
                           tol=1e-4)
        h = res.history
        pred = np.sign(to_numpy(res.network.predict(Xb))[:, 0])

        def first(key, ok):
            i = np.flatnonzero(ok)
            return float(h["time"][i[0]]) if len(i) else None

        # median seconds per iteration between checks (checks included, compilation excluded);
        # phase timers would misattribute under JAX, whose queued iterations finish at the check
        per_iter = float(np.median(np.diff(h["time"]) / np.maximum(np.diff(h["iteration"]), 1)))
        prod = None  # the exact iteration's GEMMs timed alone (the ratio is defined for "exact" only)
        if solver == "exact":
            op = Operators(Xb, Db, 1)
            prod = time_products(op, ExactSolver(op, res.rho), reps=20)
        row = {
            "solver": solver, "backend": backend, "dtype": dtype, "device": device_name(backend, args.device),
            "n": n, "d": X.shape[1], "P": D.shape[1], "iterations": res.n_iter, "status": res.status,
            "precompute_s": res.timings["precompute"], "seconds_per_iteration": per_iter,
            "products_alone_s": prod, "ratio_iteration_to_products": per_iter / prod if prod else None,
            "time_to_gap_1e-2_s": first("gap", (np.abs(h["rel_gap"]) <= 1e-2) & (h["cone_violation"] <= 1e-2)),
            "time_to_gap_1e-3_s": first("gap", (np.abs(h["rel_gap"]) <= 1e-3) & (h["cone_violation"] <= 1e-3)),
            "final_rel_gap": res.rel_gap, "objective": res.objective,
            "inner_iterations_mean": res.info.get("cg_iters_mean", res.info.get("rbcd_sweeps_mean")),
            "train_accuracy": float(np.mean(pred == y)),
        }
        rows.append(row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    out.say(f"\n{'solver':<13}{'backend':<8}{'dtype':<9}{'s/iter':>10}{'ratio':>8}{'precomp s':>11}{'to 1e-2 s':>11}{'to 1e-3 s':>11}{'gap':>10}")
    for r in rows:
        fmt = lambda v: f"{v:11.2f}" if v is not None else f"{'n/a':>11}"
        fmt8 = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"
        out.say(f"{r['solver']:<13}{r['backend']:<8}{r['dtype']:<9}{r['seconds_per_iteration']:>10.4f}{fmt8(r['ratio_iteration_to_products'])}"
                f"{r['precompute_s']:>11.2f}{fmt(r['time_to_gap_1e-2_s'])}{fmt(r['time_to_gap_1e-3_s'])}{r['final_rel_gap']:>10.2e}")
    out.write(rows)


if __name__ == "__main__":
    main()
