"""Exact u-step by the Woodbury identity, never forming the (2dPC x 2dPC) matrix.

With ``B = I_{2PC} (x) (I + X^T X)`` and ``M = F B^{-1} F^T = 2 K o (D D^T)``,
``K = X (I + X^T X)^{-1} X^T``,

    A^{-1} b = B^{-1} b - B^{-1} F^T (rho I_n + M)^{-1} F B^{-1} b.

Here ``X^T X`` means ``op.gram()``, which carries the cone weight sigma^2.

Precompute (fewest flops the structure allows): one d x d eigendecomposition,
in float64, ``X^T X = Q diag(e) Q^T``, so that ``(I + X^T X)^{-1} = Q diag(1/(1+e)) Q^T``
and ``K = Y Y^T`` with ``Y = (X Q) diag((1+e)^{-1/2})``: one n x d x d GEMM and
one n x n SYRK. ``M`` is then factored:

* ``factor="cholesky"`` (default): a Cholesky factor of ``rho I + M`` (n^3/3
  flops). A new rho refactors it (the driver moves rho alone rarely); the last
  ``cache_size`` factors are kept, so returning to a recent rho is free. ``M``
  is kept for the refactorisations.
* ``factor="eigh"``: an eigendecomposition of ``M`` (about 10x slower than
  Cholesky), after which any rho is free.

Per solve: two products with ``(I + X^T X)^{-1}`` (kept as one dense d x d
matrix: one GEMM each, cheaper than the two GEMMs through Q), one with F, one
with F^T, and one n x n triangular solve pair (or two products with the
eigenvectors).
"""
from __future__ import annotations

import copy
import time

import numpy as np

from .._backend import (as_float64, backend_of, cho_factor_shifted, cho_solve, eigh, hadamard_, like, namespace,
                        pytree, syrk, to_numpy)

FACTORS = ("cholesky", "eigh")


def exact_bytes(n: int, d: int, itemsize: int = 8, cache_size: int = 2) -> int:
    """Peak bytes the exact solver allocates: about ``1 + cache_size`` (Cholesky:
    M and the cached factors; eigh: its workspace) n x n and two d x d arrays."""
    return itemsize * ((1 + max(int(cache_size), 2)) * n * n + 2 * d * d + 2 * n * d)


def _gram_basis(XtX):
    """``Q``, ``w = 1 / (1 + e)`` and ``(I + X^T X)^{-1} = Q diag(w) Q^T`` from
    ``X^T X = Q diag(e) Q^T``, computed in float64 (d x d work, negligible next
    to the n x n) and returned in the dtype of ``XtX``: in float32 this makes the
    solve about 10x more accurate than a float32 eigendecomposition (measured at
    n = 2000, cond(I + X^T X) = 7e5: 2e-3 against 5e-2; the old float32 Cholesky
    inverse gave 5e-3)."""
    a = as_float64(XtX)
    e, Q = eigh(a)
    xp = namespace(a)
    w = 1 / (1 + xp.maximum(e, 0))
    Binv = (Q * w) @ Q.T
    out = (Q, w, Binv)
    if a.dtype == XtX.dtype:
        return out
    if backend_of(a) == backend_of(XtX):
        return tuple(xp.astype(t, XtX.dtype) for t in out)
    return tuple(like(to_numpy(t), XtX) for t in out)


@pytree("op", "rho", "XtX", "Binv", "L", "V", "evals", static=("factor",))
class ExactSolver:
    name = "exact"
    jittable = True  # a pytree of arrays with no host reads: compiled whole under JAX

    def __init__(self, op, rho: float, factor: str = "cholesky", cache_size: int = 2):
        if factor not in FACTORS:
            raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
        t0 = time.perf_counter()
        xp, X, D = op.xp, op.X, op.D
        self.op = op
        self.rho = float(rho)
        self.factor = factor
        self.cache_size = max(int(cache_size), 1)
        self.XtX = op.gram()
        Q, w, self.Binv = _gram_basis(self.XtX)
        # M = 2 K o (D D^T), K = (XQ) diag(w) (XQ)^T; the 2 goes into the column weights
        M = syrk(X @ Q, xp.sqrt(2 * w))
        M = hadamard_(M, D @ D.T)
        self.info = {"factor": factor}
        self.L = self.V = self.evals = None
        self._M = None
        self._cache = {}  # rho -> Cholesky factor; shared by the copies with_rho makes
        if factor == "eigh":
            evals, self.V = eigh(M)
            del M
            self.evals = xp.maximum(evals, 0)
        else:
            self._M = M
            self._set_rho(self.rho)
        self.info["precompute_s"] = time.perf_counter() - t0

    def _set_rho(self, rho: float):
        """Point ``L`` at the Cholesky factor of ``rho I + M``: from the cache, or
        one new factorisation (the oldest cached factor is dropped first, so the
        peak is M plus ``cache_size`` factors)."""
        self.rho = float(rho)
        L = self._cache.pop(self.rho, None)
        if L is None:
            while len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            t0 = time.perf_counter()
            try:
                L = cho_factor_shifted(self._M, self.rho)
            except np.linalg.LinAlgError as err:
                raise np.linalg.LinAlgError(
                    f"rho I + F B^-1 F^T is not numerically positive definite at rho = {self.rho:g} "
                    f"in {self._M.dtype}; use a larger rho, float64, or factor='eigh'") from err
            self.info["factor_s"] = self.info.get("factor_s", 0.0) + time.perf_counter() - t0
            self.info["n_factorizations"] = self.info.get("n_factorizations", 0) + 1
        self._cache[self.rho] = L  # most recently used last
        self.L = L

    def with_rho(self, rho: float) -> "ExactSolver":
        new = copy.copy(self)
        if self.factor == "cholesky":
            new._set_rho(rho)
        else:
            new.rho = float(rho)
        return new

    def _inner(self, t):
        """``(rho I + M)^{-1} t`` for t (n, C)."""
        if self.factor == "cholesky":
            return cho_solve(self.L, t)
        return self.V @ ((self.V.T @ t) / (self.rho + self.evals)[:, None])

    def step(self, b, u0=None, k=0):
        """``(solve(b), None)``: no diagnostics."""
        return self.solve(b), None

    def record(self, aux) -> None:
        pass

    def solve(self, b, u0=None, k: int = 0):
        op, xp = self.op, self.op.xp
        q = self.Binv @ b
        qv, qw = op.halves(q)
        z = self._inner(op.F_diff(qv - qw))
        h = self.Binv @ op.FT_half(z)
        return q - xp.concat([h, -h], axis=1)
