"""All 60 000 Fashion-MNIST training images, matrix-free (issue 12's large-n target).

Classes 0, 2, 4, 6 (T-shirt, pullover, coat, shirt) against the rest, targets +-1,
d = 784 standardised pixels + bias, P = 20 Gaussian patterns (seed 0), beta = 1e-3,
``solve()`` defaults with ``solver="auto"`` (the n x n factor of the exact solver,
3 x 60 000^2 x 8 bytes, does not fit, so ``auto`` goes matrix-free) or the solver
given, until certified at ``--tol`` or ``--max-time`` seconds. Prints the gap every
check, the solver chosen and why, train and test accuracy, and the peak resident
memory of the process.

    python benchmarks/fmnist_60k.py [--max-time 600] [--tol 1e-3] [--solver auto] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from problems import FMNIST, read_idx  # noqa: E402

import admmnn  # noqa: E402


def load(classes=(0, 2, 4, 6)):
    """Standardised (60000, 785) train and (10000, 785) test designs, +-1 targets."""
    def part(prefix):
        X = read_idx(os.path.join(FMNIST, f"{prefix}-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float64)
        y = read_idx(os.path.join(FMNIST, f"{prefix}-labels-idx1-ubyte.gz"))
        return X, np.where(np.isin(y, classes), 1.0, -1.0)

    (Xtr, ytr), (Xte, yte) = part("train"), part("t10k")
    mean, std = Xtr.mean(0), Xtr.std(0) + 1e-8
    return (np.c_[(Xtr - mean) / std, np.ones(len(Xtr))], ytr, np.c_[(Xte - mean) / std, np.ones(len(Xte))], yte)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-time", type=float, default=600.0)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--patterns", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    Xtr, ytr, Xte, yte = load()
    D, _ = admmnn.gaussian_patterns(Xtr, args.patterns, seed=0)
    lines = []

    def say(line):
        print(line, flush=True)
        lines.append(line)

    def callback(k, m, st):
        say(f"  it {k:5d}  {time.perf_counter() - t0:7.1f} s  objective {m['objective']:.6e}  rel gap {m['rel_gap']:.3e}"
            f"  cone viol {m['cone_violation']:.2e}")

    say(f"Fashion-MNIST 60 000 x {Xtr.shape[1]}, classes 0,2,4,6 vs rest, P = {args.patterns}, beta = 1e-3, "
        f"tol {args.tol:g}, max {args.max_time:g} s, {os.cpu_count()} CPU cores, float64, NumPy")
    t0 = time.perf_counter()
    res = admmnn.solve(Xtr, ytr, D, 1e-3, solver=args.solver, tol=args.tol, max_iter=100_000,
                       max_time=args.max_time, callback=callback)
    total = time.perf_counter() - t0
    acc = lambda X, y: float(np.mean(np.sign(res.network.predict(X)[:, 0]) == y))  # noqa: E731
    say(f"solver {res.solver} ({res.info.get('auto', {}).get('reason', 'requested')})")
    say(f"status {res.status}, {res.n_iter} iterations, {total:.1f} s (precompute {res.timings.get('precompute', 0):.1f} s), "
        f"rel gap {res.rel_gap:.3e}, objective {res.objective:.6e}")
    say(f"train acc {acc(Xtr, ytr):.4f}, test acc {acc(Xte, yte):.4f}, "
        f"inner iterations per u-step {res.info.get('cg_iters_mean', res.info.get('rbcd_sweeps_mean'))}")
    say(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
