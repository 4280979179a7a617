"""Exact u-step by the Woodbury identity (DESIGN §2).

With ``B = I_{2PC} (x) (I + X^T X)`` and ``F B^{-1} F^T = 2 K o (D D^T)``,
``K = X (I + X^T X)^{-1} X^T``,

    A^{-1} b = B^{-1} b - B^{-1} F^T (rho I_n + F B^{-1} F^T)^{-1} F B^{-1} b.

The n x n matrix ``F B^{-1} F^T`` is eigendecomposed once, so a new rho costs
nothing. Per solve: two products with ``(I + X^T X)^{-1}``, one with F, one with
F^T and two with the n x n eigenvectors.
"""
from __future__ import annotations

import copy
import time

from .._backend import device_of, eigh, pytree, spd_inverse


def exact_bytes(n: int, d: int, itemsize: int = 8) -> int:
    """Peak bytes the exact solver allocates: about three n x n and two d x d arrays."""
    return itemsize * (3 * n * n + 2 * d * d + n * d)


@pytree("op", "rho", "XtX", "Binv", "V", "evals")
class ExactSolver:
    name = "exact"
    jittable = True  # a pytree of arrays with no host reads: compiled whole under JAX

    def __init__(self, op, rho: float):
        t0 = time.perf_counter()
        xp, X, D = op.xp, op.X, op.D
        self.op = op
        self.rho = float(rho)
        eye = xp.eye(op.d, dtype=X.dtype, device=device_of(X))
        self.XtX = op.gram()
        self.Binv = spd_inverse(eye + self.XtX)
        K = (X @ self.Binv) @ X.T
        M = 2 * K * (D @ D.T)
        del K
        M = (M + M.T) / 2
        evals, self.V = eigh(M)
        del M
        self.evals = xp.maximum(evals, 0)
        self.info = {"precompute_s": time.perf_counter() - t0}

    def with_rho(self, rho: float) -> "ExactSolver":
        new = copy.copy(self)
        new.rho = rho
        return new

    def solve(self, b, u0=None, k: int = 0):
        op, xp = self.op, self.op.xp
        q = self.Binv @ b
        qv, qw = op.halves(q)
        t = op.F_diff(qv - qw)
        z = self.V @ ((self.V.T @ t) / (self.rho + self.evals)[:, None])
        h = self.Binv @ op.FT_half(z)
        return q - xp.concat([h, -h], axis=1)
