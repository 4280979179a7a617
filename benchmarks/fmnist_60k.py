"""All 60 000 Fashion-MNIST training images, matrix-free (issue 12's large-n target).

Classes 0, 2, 4, 6 (T-shirt, pullover, coat, shirt) against the rest, targets +-1,
d = 784 standardised pixels + bias, P = 20 Gaussian patterns (seed 0), beta = 1e-3,
``solve()`` defaults with ``solver="auto"`` (the n x n factor of the exact solver,
3 x 60 000^2 x 8 bytes, does not fit, so ``auto`` goes matrix-free) or the solver
given, until certified at ``--tol`` or ``--max-time`` seconds. Prints the gap every
check, the solver chosen and why, train and test accuracy, and the peak resident
memory of the process. The data come from the registry
(``admmnn.experiments.problems.binary_design``, the one-against-the-rest classes);
``--n`` keeps the first n training images. Results: benchmarks/results/fmnist_60k.{txt,json}.

    python benchmarks/fmnist_60k.py [--max-time 600] [--tol 1e-3] [--solver auto] [--out FILE]
"""
from __future__ import annotations

import os
import resource
import time

import numpy as np

import admmnn
from admmnn.experiments import bench
from admmnn.experiments.problems import binary_design

#: T-shirt, pullover, coat, shirt (+1) against the rest (-1)
CLASSES = ((1, 3, 5, 7, 8, 9), (0, 2, 4, 6))


def main(argv=None):
    ap = bench.parser(__doc__.split("\n")[0], quick=dict(n=1000, max_time=10.0, patterns=5))
    ap.add_argument("--max-time", type=float, default=600.0)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--patterns", type=int, default=20)
    ap.add_argument("--n", type=int, default=None, help="the first n training images (default all 60 000)")
    args = ap.parse_args(argv)
    out = bench.Results("fmnist_60k", args, __file__)
    say = out.say
    Xtr, ytr, Xte, yte = binary_design("fashion-mnist", CLASSES, n_train=args.n)
    D, _ = admmnn.gaussian_patterns(Xtr, args.patterns, seed=0)

    def callback(k, m, st):
        say(f"  it {k:5d}  {time.perf_counter() - t0:7.1f} s  objective {m['objective']:.6e}  rel gap {m['rel_gap']:.3e}"
            f"  cone viol {m['cone_violation']:.2e}")

    say(f"Fashion-MNIST {Xtr.shape[0]} x {Xtr.shape[1]}, classes 0,2,4,6 vs rest, P = {args.patterns}, beta = 1e-3, "
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    say(f"peak resident memory {peak:.2f} GiB")
    out.record.update(
        n=Xtr.shape[0], d=Xtr.shape[1], P=args.patterns, beta=1e-3, tol=args.tol, max_time=args.max_time,
        solver=res.solver, reason=res.info.get("auto", {}).get("reason", "requested"), status=str(res.status),
        n_iter=res.n_iter, seconds=total, precompute_s=res.timings.get("precompute", 0.0), rel_gap=res.rel_gap,
        objective=res.objective, train_accuracy=acc(Xtr, ytr), test_accuracy=acc(Xte, yte), peak_gib=peak,
        history={k: np.asarray(res.history[k]).tolist() for k in ("iteration", "time", "objective", "rel_gap")})
    out.write()


if __name__ == "__main__":
    main()
