"""Preconditioners of the u-step matrix ``A = I + F^T F / rho + I_{2PC} (x) X^T X``.

* ``JacobiPreconditioner``: ``diag(A)`` ("pcg-jacobi", RBCD's default);
* ``GramPreconditioner``: ``(I + X^T X)^{-1}`` on every group, A's exact
  group-diagonal part without ``F^T F`` (RBCD's ``precond="gram"``);
* ``NystromPreconditioner``: a randomized Nyström approximation ("pcg-nystrom",
  "pcg-nystrom-block", "rbcd-nystrom"), below; ``sketch_bytes`` is what it allocates.

Each has ``with_rho`` (the preconditioner for another rho, rebuilding only what
depends on rho) and ``descent(g)`` (a step direction on the scale of
``A^{-1} g``, for RBCD); Jacobi and Nyström also have ``apply(r)`` (``M^{-1} r``,
for CG) and ``factor``/``factor_t`` (L and L^T of ``M^{-1} = L L^T``, for
condition numbers). The solvers that use them are in ``cg.py`` and ``rbcd.py``.

Randomized Nyström preconditioner (NysADMM, Zhao, Frangella & Udell 2022;
Frangella, Tropp & Udell, "Randomized Nyström preconditioning", 2023).

``A = mu I + H`` with ``mu = 1`` (the identity part of A) and the PSD part

    H = F^T F / rho + G^T G = F^T F / rho + I_{2PC} (x) X^T X.

H is sketched with an orthonormalised Gaussian test matrix Omega (N x r,
``N = 2 d P C``) in one batched operator application (Omega as r right-hand
sides: two GEMMs with X, one with X^T X). ``F^T F Omega`` and ``G^T G Omega``
are kept apart, so a new rho only recombines them and redoes the small
factorisations. From ``Y = H Omega`` the stabilised Nyström approximation
``H ~ U diag(lam) U^T`` is (Tropp et al. 2017, Alg. 3):

    nu = sqrt(N) eps ||Y||,  Y_nu = Y + nu Omega,  L = chol(Omega^T Y_nu),
    B = Y_nu L^{-T},  U, s = svd(B),  lam = max(s^2 - nu, 0),

and the preconditioner is

    P^{-1} = (lam_r + mu) U (diag(lam) + mu I)^{-1} U^T + (I - U U^T),

symmetric positive definite with eigenvalues in ``(0, 1]``. (The reference
implementation sketched all of A and used rho as the shift; here only H is
sketched and the shift is the identity part mu = 1 of A.)

With ``rank="adaptive"`` the rank starts at ``rank0`` and doubles (re-using the
columns already sketched) until the smallest retained eigenvalue ``lam_r``,
an estimate of the error ``||H - U lam U^T||``, is at most ``mu``, or the rank
reaches ``max_rank``.

``base="block"`` (an option; the default ``base="identity"`` is the scheme
above) uses the exact block-diagonal part ``B = I_{2PC} (x) (I + X^T X)`` of A
(exact and cheap) instead of the identity: ``A = B^{1/2} (I + H~) B^{1/2}`` with
``H~ = B^{-1/2} F^T F B^{-1/2} / rho``, H~ is sketched (it depends on rho only
through the factor 1/rho, so a new rho merely rescales lam) and
``M^{-1} = B^{-1/2} P~^{-1} B^{-1/2}``. ``G^T G = I (x) X^T X`` has every
eigenvalue of X^T X 2PC times over, which no rank-r sketch of modest r can
capture; B removes it exactly at the cost of one d x d eigendecomposition.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .._backend import (cholesky_or_nan, compiles, device_of, eigh, gaussian, jit, namespace, pytree,
                        set_index, solve_triangular, switch, thin_qr, thin_svd, to_float, while_loop)


@pytree("diag", static=())
class JacobiPreconditioner:
    """``M = diag(A)``, built without any d x d product.

    The entry l of group (h, p, c) of ``diag(A)`` is
    ``1 + (X^T X)_ll + sum_i D_ip X_il^2 / rho``: ``diag(X^T X)`` are the column
    sums of ``X o X`` and the last term is one GEMM ``(X o X)^T D`` (d, P).
    """

    def __init__(self, op, rho: float):
        xp = op.xp
        X2 = op.X * op.X
        self.gram_diag = op.cone_scale**2 * xp.sum(X2, axis=0)[:, None]  # (d, 1): diag of the G^T G block
        S = X2.T @ op.D  # (d, P): sum_i D_ip X_il^2
        S = xp.reshape(xp.broadcast_to(S[:, :, None], (op.d, op.P, op.C)), (op.d, op.P * op.C))
        self.ftf_diag = xp.concat([S, S], axis=1)  # (d, 2PC)
        self._set_rho(rho)

    def _set_rho(self, rho):
        self.rho = float(rho)
        self.diag = 1 + self.gram_diag + self.ftf_diag / self.rho

    def with_rho(self, rho: float) -> "JacobiPreconditioner":
        new = copy.copy(self)
        new._set_rho(rho)
        return new

    def apply(self, r):
        """M^{-1} r."""
        return r / self.diag

    def factor(self, r):
        """M^{-1/2} r (the symmetric factor L of ``M^{-1} = L L^T``)."""
        return r / self.diag**0.5

    factor_t = factor

    descent = apply  # M^{-1} g is already on the scale of A^{-1} g


@pytree("Binv", static=())
class GramPreconditioner:
    """``(I + X^T X)^{-1}`` on every group (``Binv``, d x d): the exact inverse of A
    without ``F^T F / rho``, so it does not depend on rho."""

    def __init__(self, Binv):
        self.Binv = Binv

    def descent(self, g):
        return self.Binv @ g

    def with_rho(self, rho):
        return self


def nystrom_eig(Q, Y, rank=None):
    """Stabilised Nyström eigen-approximation ``U diag(lam) U^T`` of a PSD H from
    an orthonormal test matrix Q (N, R) and ``Y = H Q``; lam descending. With
    ``rank`` (possibly traced) only the first ``rank`` columns of Q and Y are
    live and the rest are zero: the core matrix gets an identity block there,
    so the padded columns come out with lam = 0. No host reads: a core matrix
    that rounding leaves indefinite is shifted harder in a ``while_loop``."""
    xp = namespace(Q, Y)
    N, R = Q.shape
    nu = math.sqrt(N) * float(xp.finfo(Y.dtype).eps) * xp.sqrt(xp.sum(Y * Y))
    nu = xp.maximum(nu, float(np.finfo(np.float64).tiny))
    eye = xp.eye(R, dtype=Y.dtype, device=device_of(Y))
    pad = 0 if rank is None else eye * xp.astype(xp.arange(R, device=device_of(Y)) >= rank, Y.dtype)

    def core(Ynu):
        Cm = Q.T @ Ynu
        return cholesky_or_nan((Cm + Cm.T) / 2 + pad)

    def cond(c):
        L, _, _, tries = c
        return ~xp.all(xp.isfinite(L)) & (tries < 9)

    def body(c):  # the first pass factors Y + nu Q; each later one shifts by 10x more first
        _, Ynu, nu, tries = c
        grow = 9.0 * (tries > 0)
        Ynu = Ynu + grow * nu * Q
        return core(Ynu), Ynu, nu + grow * nu, tries + 1

    Ynu = Y + nu * Q
    nan = xp.full((R, R), float("nan"), dtype=Y.dtype, device=device_of(Y))
    L, Ynu, nu, _ = while_loop(cond, body, (nan, Ynu, nu, 0), Y)
    B = solve_triangular(L, Ynu.T, lower=True).T
    U, s = thin_svd(B)
    return U, xp.maximum(s * s - nu, 0)


def _coefs(U, lam, rank, mu):
    """The preconditioner's arrays from ``H ~ U diag(lam) U^T`` with ``rank`` live
    columns: ``(U, lam, coef, coef_sqrt, lam_r)``, coefficients 0 on padded columns."""
    xp = namespace(U, lam)
    lam_r = lam[rank - 1]
    ratio = (lam_r + mu) / (lam + mu)
    live = xp.arange(lam.shape[0], device=device_of(lam)) < rank
    zero = xp.zeros_like(lam)
    return U, lam, xp.where(live, ratio - 1, zero), xp.where(live, ratio**0.5 - 1, zero), lam_r


def _factor(Q, YF, YG, unit, rank, rho, mu):
    """The preconditioner's arrays for ``rho`` from the stored sketch (compiled;
    no operator application): base "block" only rescales ``unit``, the factors at
    rho = 1; base "identity" redoes the small factorisations."""
    if YG is None:
        U, lam = unit
        return _coefs(U, lam / rho, rank, mu)
    return _coefs(*nystrom_eig(Q, YF / rho + YG, rank), rank, mu)


def _sketch_parts(op, Bis, W):
    """``F^T F W`` and ``G^T G W`` for W (d, 2PC, r): one batched application
    (base "block", ``Bis`` = B^{-1/2}: ``B^{-1/2} F^T F B^{-1/2} W`` and None)."""
    if Bis is None:
        return op.FT_batch(op.F_batch(W)), op.gram_batch(W)
    return _block(Bis, op.FT_batch(op.F_batch(_block(Bis, W)))), None


def _block(Bis, W):
    """``(I (x) B^{-1/2}) W`` for W (d, ...): one GEMM."""
    xp = namespace(W)
    return xp.reshape(Bis @ xp.reshape(W, (W.shape[0], -1)), W.shape)


def _pad(xp, a, width):
    """``a`` (N, r) or (r,) with zero columns (entries) appended up to ``width``."""
    if a is None or a.shape[-1] == width:
        return a
    z = xp.zeros(a.shape[:-1] + (width - a.shape[-1],), dtype=a.dtype, device=device_of(a))
    return xp.concat([a, z], axis=-1)


def _sketch(op, Bis, Omega, rho, mu, levels):
    """The adaptive sketch, compiled whole: a ``while_loop`` over the ranks in
    ``levels`` (static; each a doubling of the last) whose body ``switch``es to
    the level's own branch of static shapes. Level i sketches only its new
    columns ``Omega[..., levels[i-1]:levels[i]]``, orthonormalises the first
    ``levels[i]`` and factors; the loop stops when ``lam_r <= mu`` or the levels
    run out. Everything is returned zero-padded to ``R = levels[-1]`` columns:
    ``(rank, Q, YF, YG, unit, U, lam, coef, coef_sqrt, lam_r)`` (YF, YG: the
    sketches recombined for Q, i.e. ``H_F Q`` and ``H_G Q``; unit: the factors
    of base "block" at rho = 1)."""
    xp = namespace(Omega)
    d, G, R = Omega.shape
    N = d * G
    Om = xp.reshape(Omega, (N, R))
    block = Bis is not None

    def zeros():  # a fresh buffer each: NumPy fills them in place
        return xp.zeros((N, R), dtype=Omega.dtype, device=device_of(Omega))

    def level(i):
        a, r = (levels[i - 1] if i else 0), levels[i]

        def run(c):
            _, YF, YG = c[:3]
            nF, nG = _sketch_parts(op, Bis, Omega[:, :, a:r])
            YF = set_index(YF, (slice(None), slice(a, r)), xp.reshape(nF, (N, r - a)))
            if not block:
                YG = set_index(YG, (slice(None), slice(a, r)), xp.reshape(nG, (N, r - a)))
            Q, T = thin_qr(Om[:, :r])
            # H Q = H Omega T^{-1}, column by column a linear recombination
            YFq = solve_triangular(T.T, YF[:, :r].T, lower=True).T
            YGq = None if block else solve_triangular(T.T, YG[:, :r].T, lower=True).T
            unit = nystrom_eig(Q, YFq) if block else None
            U, lam = (unit[0], unit[1] / rho) if block else nystrom_eig(Q, YFq / rho + YGq)
            unit = None if unit is None else (_pad(xp, unit[0], R), _pad(xp, unit[1], R))
            arrays = _coefs(_pad(xp, U, R), _pad(xp, lam, R), r, mu)
            return (i + 1, YF, YG, _pad(xp, Q, R), _pad(xp, YFq, R), _pad(xp, YGq, R), unit, r) + arrays

        return run

    branches = [level(i) for i in range(len(levels))]

    def cond(c):
        i, lam_r = c[0], c[-1]
        return (i < len(levels)) & ((i == 0) | (lam_r > mu))

    def body(c):
        return switch(c[0], branches, c, Omega)

    lam0 = xp.zeros((R,), dtype=Omega.dtype, device=device_of(Omega))
    unit0 = (zeros(), lam0) if block else None
    start = (0, zeros(), None if block else zeros(), zeros(), zeros(), None if block else zeros(), unit0, 1,
             zeros(), lam0, lam0, lam0, lam0[0] + 2 * mu)
    _, _, _, Q, YF, YG, unit, rank, U, lam, coef, coef_sqrt, lam_r = while_loop(cond, body, start, Omega)
    return rank, Q, YF, YG, unit, (U, lam, coef, coef_sqrt, lam_r)


def sketch_bytes(n: int, d: int, P: int, C: int, itemsize: int = 8, max_rank: int = 200) -> int:
    """Peak bytes of building a ``NystromPreconditioner`` whose adaptive rank may
    grow to ``max_rank`` (200, the default of the "pcg-nystrom" solvers):

        itemsize * R * (20 N + 10 R + 2 n P C),   N = 2 d P C,  R = min(max_rank, N):

    about 20 arrays of N x R (the test matrix, the two sketches, Q, U and their
    zero-padded copies), 10 of R x R (the core matrices, the thin SVD's), and
    one level's batched ``X W`` and ``D o (X W)``, n x 2PC x (its new columns, at
    most R / 2) each. Measured with ``tracemalloc`` on NumPy, float64, bases
    "identity" and "block", 14 shapes with n = 50 to 4000, d = 5 to 101 and
    P C = 2 to 30: 0.11 to 0.84 of this bound (the low end where the adaptive
    rank stops far below R); ``tests/core/test_auto.py`` checks it on one shape."""
    N = 2 * d * P * C
    R = min(int(max_rank), N)
    return int(itemsize) * R * (20 * N + 10 * R + 2 * n * P * C)


@pytree("U", "_coef", "Bis", "_lam_r", "mu", static=("xp",))
class NystromPreconditioner:
    """``P^{-1}`` above for ``A = mu I + F^T F / rho + G^T G`` on operators ``op``.

    Options: ``rank`` (an int, or "adaptive"), ``rank0`` and ``max_rank`` (for the
    adaptive rule), ``seed`` (of the Gaussian test matrix), ``mu`` (the shift;
    1 for the u-step's A), ``cache_size`` (factorisations kept for recent rhos),
    ``base`` ("identity" or "block", see the module docstring).

    The sketch and the adaptive rank are compiled under JAX (see ``_sketch``): its
    arrays keep the width of the largest rank allowed, the columns past the rank
    chosen being zero, so that one compilation serves every data set of a shape
    whatever rank it needs. Elsewhere they are cut to the rank chosen.

    ``apply(r)`` is ``M^{-1} r``; ``factor`` and ``factor_t`` apply L and L^T for a
    factorisation ``M^{-1} = L L^T`` (for condition numbers and RBCD).
    """

    def __init__(
        self, op, rho: float, rank="adaptive", rank0: int = 10, max_rank: int = 200, seed=0,
        mu: float = 1.0, cache_size: int = 4, base: str = "identity",
    ):
        xp = self.xp = op.xp
        if base not in ("identity", "block"):
            raise ValueError(f"base must be 'identity' or 'block', got {base!r}")
        self.base = base
        self.Bis = None
        XtX = op.gram()  # cached on op before op enters the compiled sketch
        if base == "block":  # (I + X^T X)^{-1/2}
            ev, V = eigh(XtX)
            self.Bis = (V * (1 + xp.maximum(ev, 0)) ** -0.5) @ V.T
        self.mu = float(mu)
        self.cache_size = int(cache_size)
        self._cache = {}  # rho -> factorisation; shared by the copies with_rho makes
        N = op.d * op.n_groups
        rng = np.random.default_rng(seed)
        if rank == "adaptive":
            target, r = min(int(max_rank), N), min(int(rank0), N)
        else:
            target = r = min(int(rank), N)
        if r < 1:
            raise ValueError(f"the Nyström rank must be >= 1, got {rank!r}")
        levels = [r]
        while levels[-1] < target:
            levels.append(min(2 * levels[-1], target))
        # the Gaussian test matrix, drawn level by level on the host
        Omega = xp.concat([gaussian((op.d, op.n_groups, b - a), op.X, rng)
                           for a, b in zip([0] + levels[:-1], levels)], axis=-1)
        self.rho = float(rho)
        out = jit(_sketch, op.X, static_argnames=("levels",))(op, self.Bis, Omega, self.rho, self.mu,
                                                                levels=tuple(levels))
        self._rank, self.Q, self.YF, self.YG, self._unit, arrays = out
        self.rank = int(to_float(self._rank))  # one host read, after the compiled sketch
        if not compiles(op.X):  # no compilation to serve: drop the padding
            r = self.rank
            self._rank = r
            self.Q, self.YF = self.Q[:, :r], self.YF[:, :r]
            self.YG = None if self.YG is None else self.YG[:, :r]
            self._unit = None if self._unit is None else (self._unit[0][:, :r], self._unit[1][:r])
            arrays = tuple(a[..., :r] for a in arrays[:4]) + arrays[4:]
        self._remember(self.rho, arrays)
        if not math.isfinite(self.lam_r):
            raise np.linalg.LinAlgError("the Nyström core matrix is not positive definite even after shifting")

    def _remember(self, rho, hit):
        """Make ``hit`` the current factorisation, most recently used in the cache.
        Residual balancing moves rho by factors of 2, so the same few values recur:
        the last ``cache_size`` factorisations are kept."""
        self._cache[rho] = hit
        while len(self._cache) > self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self.U, self.lam, self._coef, self._coef_sqrt, self._lam_r = hit

    def _set_rho(self, rho: float):
        """Recombine the stored sketches for ``rho`` and refactor (compiled: r x r
        work and one thin N x r SVD; base "block" only rescales)."""
        self.rho = float(rho)
        hit = self._cache.pop(self.rho, None)
        if hit is None:
            hit = jit(_factor, self.Q)(self.Q, self.YF, self.YG, self._unit, self._rank, self.rho, self.mu)
        self._remember(self.rho, hit)

    @property
    def lam_r(self) -> float:
        """Smallest retained eigenvalue: the error estimate of the adaptive rule."""
        return to_float(self._lam_r)

    def with_rho(self, rho: float) -> "NystromPreconditioner":
        """The preconditioner for another rho: no new operator application."""
        new = copy.copy(self)
        new._set_rho(rho)
        return new

    def _apply(self, r, coef):
        xp = self.xp
        x = xp.reshape(r, (-1,))
        x = x + self.U @ (coef * (self.U.T @ x))
        return xp.reshape(x, r.shape)

    def _block(self, W):
        return _block(self.Bis, W)

    def apply(self, r):
        """M^{-1} r for r (d, 2PC)."""
        if self.Bis is None:
            return self._apply(r, self._coef)
        return self._block(self._apply(self._block(r), self._coef))

    def factor(self, r):
        """L r, with ``M^{-1} = L L^T`` (L symmetric for base "identity")."""
        out = self._apply(r, self._coef_sqrt)
        return out if self.Bis is None else self._block(out)

    def factor_t(self, r):
        """L^T r."""
        return self._apply(r if self.Bis is None else self._block(r), self._coef_sqrt)

    def descent(self, g):
        """``M^{-1} g / (lam_r + mu)``: on the sketched range this is
        ``(U lam U^T + mu I)^{-1} g`` and elsewhere ``g / (lam_r + mu)`` (base
        "identity"), an approximate Newton direction (M^{-1} alone is scaled for
        CG, where the scale does not matter, but overshoots by ``lam_r + mu``)."""
        return self.apply(g) / (self._lam_r + self.mu)


__all__ = ["JacobiPreconditioner", "GramPreconditioner", "NystromPreconditioner", "nystrom_eig", "sketch_bytes"]
