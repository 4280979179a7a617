"""Condition numbers of the u-step matrix, with and without preconditioning.

For the study of condition number against Nyström rank (Figure 2 of Feng, Shah & Abraham's
poster, Scalable ADMM for Convex Neural Networks on GPU, 2023):
``kappa(op, rho)`` is ``kappa(A)`` for the real u-step matrix

    A = I + F^T F / rho + I_{2PC} (x) X^T X      (G^T G included),

and ``kappa(op, rho, precond)`` is ``kappa(M^{-1} A)``, computed as the condition
number of the symmetric ``L^T A L`` (same spectrum), ``M^{-1} = L L^T``. ``precond`` is
"jacobi", "nystrom" (with ``rank``) or a preconditioner object with
``factor`` and ``factor_t`` (L and L^T of ``M^{-1} = L L^T``); the spectrum of
``M^{-1} A`` is that of ``L^T A L``.

``method="dense"`` forms the matrices (A from ``apply_A``-style products on
identity columns, in one batched application) and is meant for small problems
(``N = 2 d P C`` up to a few thousand); ``method="lanczos"`` is matrix-free
(``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``) for large ones;
"auto" picks dense when ``N <= dense_max``. Works on NumPy operators.
"""
from __future__ import annotations

import numpy as np

from ..ustep.base import apply_A, apply_H_batch
from ..ustep.preconditioners import JacobiPreconditioner, NystromPreconditioner


def size(op) -> int:
    """Dimension N = 2 d P C of the u-step system."""
    return op.d * op.n_groups


def dense_A(op, rho: float) -> np.ndarray:
    """The (N, N) matrix A, built by applying A to all identity columns at once."""
    N = size(op)
    E = np.eye(N).reshape(op.d, op.n_groups, N)
    AE = E + apply_H_batch(op, E, rho)
    A = np.asarray(AE).reshape(N, N)
    return (A + A.T) / 2


def _dense_columns(fn, op) -> np.ndarray:
    """Matrix of a linear map on (d, 2PC) arrays, one column at a time."""
    N = size(op)
    return np.stack([np.asarray(fn(e.reshape(op.d, op.n_groups))).ravel() for e in np.eye(N)], axis=1)


def preconditioner(op, rho: float, precond, rank=None, seed=0, base="identity"):
    """A preconditioner object for ``precond`` ("jacobi", "nystrom" or an object)."""
    if precond == "jacobi":
        return JacobiPreconditioner(op, rho)
    if precond == "nystrom":
        if rank is None:
            raise ValueError("the Nyström preconditioner needs a rank")
        return NystromPreconditioner(op, rho, rank=rank, seed=seed, base=base)
    if hasattr(precond, "factor"):
        return precond
    raise ValueError(f"precond must be None, 'jacobi', 'nystrom' or a preconditioner object, got {precond!r}")


def kappa(
    op, rho: float, precond=None, rank=None, method: str = "auto", seed=0, dense_max: int = 3000, tol: float = 1e-4,
    base: str = "identity",
):
    """Condition number of A (``precond=None``) or of ``M^{-1} A`` (``base`` is
    the Nyström preconditioner's, "identity" or "block")."""
    N = size(op)
    if method == "auto":
        method = "dense" if N <= dense_max else "lanczos"
    pre = None if precond is None else preconditioner(op, rho, precond, rank, seed, base)
    if method == "dense":
        A = dense_A(op, rho)
        if pre is not None:
            L = _dense_columns(pre.factor, op)
            A = L.T @ A @ L
        ev = np.linalg.eigvalsh((A + A.T) / 2)
        return float(ev[-1] / ev[0])
    if method == "lanczos":
        lo, hi = extreme_eigenvalues(op, rho, pre, tol=tol, seed=seed)
        return hi / lo
    raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")


def extreme_eigenvalues(op, rho: float, pre=None, tol: float = 1e-4, seed=0):
    """Smallest and largest eigenvalues of A (or ``L^T A L``, ``M^{-1} = L L^T``) by
    Lanczos (ARPACK), applying A matrix-free."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    N = size(op)
    XtX = op.gram()
    shape = (op.d, op.n_groups)

    def matvec(x):
        u = np.asarray(x, dtype=np.float64).reshape(shape)
        if pre is not None:
            u = pre.factor(u)
        y = apply_A(op, XtX, u, rho)
        if pre is not None:
            y = pre.factor_t(y)
        return np.asarray(y).ravel()

    L = LinearOperator((N, N), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(N)
    hi = eigsh(L, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    lo = eigsh(L, k=1, which="SA", tol=tol, v0=v0, return_eigenvectors=False, maxiter=20 * N)[0]
    return float(lo), float(hi)


def kappa_vs_rank(op, rho: float, ranks, method: str = "auto", seed=0, bases=("identity", "block"), dense_max: int = 3000):
    """kappa(A), kappa(diag(A)^{-1} A) and kappa(P_r^{-1} A) for each Nyström rank r.

    Returns a dict with "A", "jacobi" (floats), "ranks" and, per base,
    "nystrom-<base>" (lists over the ranks).
    """
    ranks = [int(r) for r in ranks]
    kw = dict(method=method, dense_max=dense_max)
    out = {"A": kappa(op, rho, None, **kw), "jacobi": kappa(op, rho, "jacobi", **kw), "ranks": ranks}
    for base in bases:
        out[f"nystrom-{base}"] = [kappa(op, rho, "nystrom", rank=r, seed=seed, base=base, **kw) for r in ranks]
    return out


__all__ = ["dense_A", "kappa", "kappa_vs_rank", "extreme_eigenvalues", "preconditioner", "size"]
