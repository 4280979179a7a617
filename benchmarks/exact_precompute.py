"""Precompute of the exact u-step: the old n x n eigendecomposition against the
new Cholesky factor, side by side, in float64 and float32.

Synthetic standardised data shaped like Fashion-MNIST: n x 784 correlated
Gaussian features (a decaying spectrum, so X^T X is ill-conditioned as for
images), standardised, plus a bias column (d = 785); P = 50 Gaussian patterns,
C = 1. Columns:

* ``old eigh``: the previous ExactSolver precompute, reproduced verbatim
  (Cholesky inverse of I + X^T X, K = (X B^-1) X^T by GEMM, M = 2 K o D D^T,
  symmetrised, eigendecomposed);
* ``cholesky``: the new ``ExactSolver`` (eigendecomposition of the d x d X^T X,
  M by one GEMM and one SYRK, Cholesky of rho I + M), split into building M and
  factoring, and the time of one refactorisation for a new rho (``with_rho``);
* ``err old``, ``err new``: relative difference of each solver's solution of
  one random right-hand side from the float64 Cholesky solver's.

Above ``--always-upto``, a cell whose estimated time exceeds ``--cell-budget``
seconds (extrapolated as n^3 from the previous size) is skipped and marked so. A second table gives the
seconds per solve (one u-step) of both factors at ``--iter-n``. Results:
benchmarks/results/exact_precompute.{txt,json} (the paper's macros read the JSON).

    OMP_NUM_THREADS=2 python benchmarks/exact_precompute.py
"""
from __future__ import annotations

import os
import time

import numpy as np

from admmnn import gaussian_patterns
from admmnn._backend import eigh, spd_inverse
from admmnn.operators import Operators
from admmnn.experiments import bench
from admmnn.ustep import ExactSolver


def synthetic(n, d_feat=784, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d_feat, d_feat)) * (1.0 / (1 + np.arange(d_feat)))[:, None]
    X = rng.standard_normal((n, d_feat)) @ mix
    X = (X - X.mean(0)) / X.std(0)
    return np.hstack([X, np.ones((n, 1))])


def old_eigh_precompute(op):
    """The ExactSolver precompute before this change, verbatim."""
    xp, X, D = op.xp, op.X, op.D
    eye = xp.eye(op.d, dtype=X.dtype)
    Binv = spd_inverse(eye + op.gram())
    K = (X @ Binv) @ X.T
    M = 2 * K * (D @ D.T)
    del K
    M = (M + M.T) / 2
    evals, V = eigh(M)
    del M
    return Binv, V, xp.maximum(evals, 0)


def old_solve(op, Binv, V, evals, rho, b):
    q = Binv @ b
    qv, qw = op.halves(q)
    t = op.F_diff(qv - qw)
    z = V @ ((V.T @ t) / (rho + evals)[:, None])
    h = Binv @ op.FT_half(z)
    return q - np.concatenate([h, -h], axis=1)


def per_solve(f, reps):
    f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], quick=dict(sizes=[300, 600], patterns=5, iter_n=300, reps=2))
    ap.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000, 20000])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--patterns", type=int, default=50)
    ap.add_argument("--rho", type=float, default=1.0)
    ap.add_argument("--cell-budget", type=float, default=150.0, help="skip a cell estimated to take longer (s)")
    ap.add_argument("--always-upto", type=int, default=10000, help="run every cell up to this n")
    ap.add_argument("--no-old-above", type=int, default=None, help="skip the old eigh column above this n")
    ap.add_argument("--iter-n", type=int, default=2500)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    out = bench.Results("exact_precompute", args, __file__)
    emit = out.say
    rows, per_solve_rows = [], []

    emit(f"Exact u-step precompute, synthetic n x 785 (784 standardised features + bias), P = {args.patterns}, "
         f"C = 1, rho = {args.rho:g}")
    emit(f"{out.machine['cpu']}, {os.cpu_count()} cores visible, "
         f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, NumPy {np.__version__}; seconds")
    emit()
    head = f"{'dtype':>8}{'n':>7}{'old eigh':>10}{'cholesky':>10}{'(build M':>10}{'factor)':>9}{'speedup':>9}" \
           f"{'new rho':>9}{'err old':>10}{'err new':>10}"
    emit(head)
    emit("-" * len(head))
    last = {}  # per dtype and column: (n, seconds) of the previous size, to extrapolate
    ref = {}  # n -> float64 Cholesky solution, the reference of the float32 rows
    for dtype in args.dtypes:
        for n in args.sizes:
            X = synthetic(n).astype(dtype)
            D, _ = gaussian_patterns(X, args.patterns, seed=0)
            D = D.astype(dtype)
            b = np.random.default_rng(1).standard_normal((X.shape[1], 2 * D.shape[1]))
            repeat = 2 if n <= 5000 else 1  # best of 2 where cheap: the machine is shared

            def run(col):
                if n <= args.always_upto or (dtype, col) not in last:
                    return True
                n0, s0 = last[(dtype, col)]
                return s0 * (n / n0) ** 3 <= args.cell_budget

            t_old = t_new = t_fac = t_rho = float("nan")
            u_old = u_new = None
            if run("old") and (args.no_old_above is None or n <= args.no_old_above):
                op = Operators(X, D, 1)
                for _ in range(repeat):
                    op._gram = None
                    t0 = time.perf_counter()
                    old = old_eigh_precompute(op)
                    t_old = min(t_old, time.perf_counter() - t0) if t_old == t_old else time.perf_counter() - t0
                last[(dtype, "old")] = (n, t_old)
                u_old = old_solve(op, *old, args.rho, b.astype(dtype))
                del old, op
            if run("new"):
                best = None
                for _ in range(repeat):
                    new = ExactSolver(Operators(X, D, 1), args.rho)
                    if best is None or new.info["precompute_s"] < best[0]:
                        best = (new.info["precompute_s"], new.info["factor_s"])
                t_new, t_fac = best
                last[(dtype, "new")] = (n, t_new)
                u_new = new.solve(b.astype(dtype))
                t0 = time.perf_counter()
                new.with_rho(2 * args.rho)
                t_rho = time.perf_counter() - t0
                del new
            if dtype == "float64" and u_new is not None:
                ref[n] = u_new

            def rel_err(u):
                if u is None or n not in ref or (dtype == "float64" and u is u_new):
                    return None
                return float(np.linalg.norm(u - ref[n]) / np.linalg.norm(ref[n]))

            def err(u):
                e = rel_err(u)
                return f"{'-':>10}" if e is None else f"{e:>10.1e}"

            rows.append({"dtype": dtype, "n": n, "old_s": bench.finite(t_old), "new_s": bench.finite(t_new),
                         "build_s": bench.finite(t_new - t_fac), "factor_s": bench.finite(t_fac),
                         "rho_s": bench.finite(t_rho), "err_old": rel_err(u_old), "err_new": rel_err(u_new)})

            fmt = lambda t: f"{t:>10.2f}" if t == t else f"{'skipped':>10}"  # noqa: E731
            if t_new == t_new:
                speed = f"{t_old / t_new:>8.1f}x" if t_old == t_old else f"{'':>9}"
                row = (f"{dtype:>8}{n:>7}{fmt(t_old)}{fmt(t_new)}{t_new - t_fac:>10.2f}{t_fac:>9.2f}"
                       f"{speed}{t_rho:>9.2f}{err(u_old)}{err(u_new)}")
            else:
                row = f"{dtype:>8}{n:>7}{fmt(t_old)}{fmt(t_new)}"
            emit(row)
    emit()
    emit(f"n <= {args.always_upto} always runs; above, 'skipped' = estimated (n^3 from the previous size) "
         f"over {args.cell_budget:g} s per cell. n <= 5000: best of 2 runs.")
    emit("'new rho': one with_rho refactorisation (Cholesky of rho I + M; M is kept).")
    emit("err old / err new: relative difference of the solution of one random right-hand side from the "
         "float64 Cholesky solver's ('-': the reference itself).")

    # seconds per u-step (solve) at iter-n, both factors, in one run, interleaved
    emit()
    emit(f"Seconds per u-step solve, n = {args.iter_n}, P = {args.patterns}, d = 785, C = 1 "
         f"(best of 5 rounds of {args.reps}, the two factors interleaved)")
    emit(f"{'dtype':>8}{'eigh':>11}{'cholesky':>11}")
    for dtype in args.dtypes:
        X = synthetic(args.iter_n).astype(dtype)
        D, _ = gaussian_patterns(X, args.patterns, seed=0)
        op = Operators(X, D.astype(dtype), 1)
        b = np.random.default_rng(1).standard_normal((X.shape[1], op.n_groups)).astype(dtype)
        solvers = {fac: ExactSolver(op, args.rho, factor=fac) for fac in ("eigh", "cholesky")}
        t = {fac: min(per_solve(lambda: s.solve(b), args.reps) for _ in range(1)) for fac, s in solvers.items()}
        for _ in range(4):
            for fac, s in solvers.items():
                t[fac] = min(t[fac], per_solve(lambda: s.solve(b), args.reps))
        del solvers
        emit(f"{dtype:>8}{t['eigh']:>11.2e}{t['cholesky']:>11.2e}")
        per_solve_rows.append({"dtype": dtype, "n": args.iter_n, "eigh_s": t["eigh"], "cholesky_s": t["cholesky"]})

    out.record.update(patterns=args.patterns, rho=args.rho, rows=rows, per_solve=per_solve_rows)
    out.write()


if __name__ == "__main__":
    main()
