"""Exact-solver benchmark on real Fashion-MNIST, T-shirt (0) vs shirt (6).

1000 train / 1000 test images, standardised with train statistics, plus a bias
column; P = 10 patterns, beta = 1e-3. Prints precompute time, iterations and
seconds to relative gap 1e-3 and 1e-4, per-phase times, accuracies, and the ratio
of the mean iteration time to the same iteration's matrix products timed alone.

Data: the registry's ``binary_design`` (``admmnn.experiments.problems``): the first n train
and test images of the two classes; `apt-get install dataset-fashion-mnist` (IDX files under
/usr/share/datasets/fashion-mnist) or a copy under data/. Results:
benchmarks/results/exact_fashion_mnist.{txt,json}.
"""
from __future__ import annotations

import time

import numpy as np

import admmnn
from admmnn._backend import like, synchronize
from admmnn.experiments import bench
from admmnn.experiments.data import DatasetUnavailableError
from admmnn.experiments.problems import binary_design
from admmnn.operators import Operators
from admmnn.ustep import ExactSolver


def time_products(op, solver, reps):
    """Seconds per iteration of the exact iteration's GEMMs alone (same shapes,
    same order, same backend and device), synchronising once at the end."""
    rng = np.random.default_rng(0)
    X, Binv = op.X, solver.Binv
    k = op.n_groups
    s, b, e, t, m = (like(rng.standard_normal(shape), X) for shape in
                     [(op.n, k), (op.d, k), (op.d, k // 2), (op.n, op.C), (op.n, k // 2)])
    out = []
    synchronize(X)
    t0 = time.perf_counter()
    for _ in range(reps):
        out = [
            X.T @ s,          # G^T (s - nu)
            Binv @ b,         # B^{-1} b
            X @ e,            # F B^{-1} b
            solver._inner(t), # n x n solve (Cholesky pair or eigenvectors)
            X.T @ m,          # F^T z
            Binv @ e,         # B^{-1} F^T z
            X @ b,            # G u
        ]
    synchronize(out[-1])
    return (time.perf_counter() - t0) / reps


def main(argv=None):
    ap = bench.parser(__doc__, quick=dict(n=200, patterns=4, max_iter=200, max_time=10.0))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--patterns", type=int, default=10)
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=20000)
    ap.add_argument("--max-time", type=float, default=600.0)
    ap.add_argument("--dtype", default="float64")
    args = ap.parse_args(argv)
    try:
        Xtr, ytr, Xte, yte = binary_design("fashion-mnist", n_train=args.n, n_test=args.n)
    except DatasetUnavailableError as exc:
        raise SystemExit(str(exc)) from None
    out = bench.Results("exact_fashion_mnist", args, __file__)
    say = out.say
    Xtr, Xte = Xtr.astype(args.dtype), Xte.astype(args.dtype)
    D, _ = admmnn.gaussian_patterns(Xtr, args.patterns, seed=0)

    res = admmnn.solve(Xtr, ytr, D, args.beta, solver="exact", tol=1e-4, max_iter=args.max_iter,
                       max_time=args.max_time, check_every=10)
    h = res.history

    def first(thr):
        i = np.flatnonzero((h["rel_gap"] <= thr) & (h["cone_violation"] <= thr))
        return (int(h["iteration"][i[0]]), float(h["time"][i[0]])) if len(i) else (None, None)

    acc = lambda X, y: float(np.mean(np.sign(res.network.predict(X)[:, 0]) == y))
    op = Operators(Xtr, D, 1)
    solver = ExactSolver(op, res.rho)
    prod = time_products(op, solver, reps=5 if args.quick else 50)
    it_time = sum(res.timings[p] for p in ("u", "v", "s", "dual")) / res.n_iter

    say(f"Fashion-MNIST 0 vs 6: n={len(Xtr)}, d={Xtr.shape[1]}, P={D.shape[1]}, beta={args.beta}, {args.dtype}")
    say(f"status {res.status} after {res.n_iter} iterations; objective {res.objective:.6g}, "
        f"dual bound {res.dual_bound:.6g}, rel gap {res.rel_gap:.2e}")
    say(f"{'quantity':<42}{'value':>14}")
    say(f"{'precompute (s)':<42}{res.timings['precompute']:>14.3f}")
    for thr in (1e-3, 1e-4):
        k, t = first(thr)
        say(f"{f'iterations / seconds to rel gap {thr:g}':<42}{str(k):>7} / {('%.2f' % t) if t else 'n/a':>6}")
        out.record[f"to_gap_{thr:g}"] = {"iterations": k, "seconds": t}
    for p in ("u", "v", "s", "dual", "check"):
        say(f"{f'phase {p} (s total)':<42}{res.timings.get(p, 0.0):>14.3f}")
    say(f"{'train accuracy':<42}{acc(Xtr, ytr):>14.4f}")
    say(f"{'test accuracy':<42}{acc(Xte, yte):>14.4f}")
    say(f"{'mean iteration (ms)':<42}{1e3 * it_time:>14.3f}")
    say(f"{'its matrix products alone (ms)':<42}{1e3 * prod:>14.3f}")
    say(f"{'ratio iteration / products':<42}{it_time / prod:>14.2f}")
    out.record.update(
        n=len(Xtr), d=Xtr.shape[1], P=D.shape[1], beta=args.beta, dtype=args.dtype, status=str(res.status),
        n_iter=res.n_iter, objective=res.objective, dual_bound=res.dual_bound, rel_gap=res.rel_gap,
        timings=dict(res.timings), train_accuracy=acc(Xtr, ytr), test_accuracy=acc(Xte, yte),
        iteration_s=it_time, products_alone_s=prod)
    out.write()


if __name__ == "__main__":
    main()
