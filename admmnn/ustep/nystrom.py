"""Randomized Nyström preconditioner and the "pcg-nystrom" u-step (NysADMM,
Zhao, Frangella & Udell 2022; Frangella, Tropp & Udell, "Randomized Nyström
preconditioning", 2023).

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

from .._backend import cholesky, eigh, gaussian, pytree, solve_triangular, thin_qr, thin_svd, to_float
from .cg import CGSolver


def nystrom_eig(xp, Q, Y):
    """Stabilised Nyström eigen-approximation ``U diag(lam) U^T`` of a PSD H from
    an orthonormal test matrix Q (N, r) and ``Y = H Q``; lam descending."""
    N = Q.shape[0]
    eps = float(xp.finfo(Y.dtype).eps)
    nu = math.sqrt(N) * eps * to_float(xp.sqrt(xp.sum(Y * Y)))
    nu = max(nu, float(np.finfo(np.float64).tiny))
    Ynu = Y + nu * Q
    for _ in range(8):  # if rounding leaves Q^T Y_nu indefinite, shift harder
        Cm = Q.T @ Ynu
        Cm = (Cm + Cm.T) / 2
        try:
            L = cholesky(Cm)
            if bool(to_float(xp.all(xp.isfinite(L)))):
                break
        except Exception:  # LinAlgError (NumPy) / RuntimeError (torch); JAX returns NaN
            pass
        Ynu = Ynu + 9 * nu * Q
        nu = 10 * nu
    else:
        raise np.linalg.LinAlgError("the Nyström core matrix is not positive definite even after shifting")
    B = solve_triangular(L, Ynu.T, lower=True).T
    U, s = thin_svd(B)
    lam = xp.maximum(s * s - nu, 0)
    return U, lam


@pytree("U", "_coef", "Bis", static=("xp",))
class NystromPreconditioner:
    """``P^{-1}`` above for ``A = mu I + F^T F / rho + G^T G`` on operators ``op``.

    Options: ``rank`` (an int, or "adaptive"), ``rank0`` and ``max_rank`` (for the
    adaptive rule), ``seed`` (of the Gaussian test matrix), ``mu`` (the shift;
    1 for the u-step's A), ``cache_size`` (factorisations kept for recent rhos),
    ``base`` ("identity" or "block", see the module docstring).

    ``apply(r)`` is ``M^{-1} r``; ``factor`` and ``factor_t`` apply L and L^T for a
    factorisation ``M^{-1} = L L^T`` (for condition numbers and RBCD).
    """

    def __init__(
        self, op, rho: float, rank="adaptive", rank0: int = 10, max_rank: int = 200, seed=0,
        mu: float = 1.0, cache_size: int = 4, base: str = "identity",
    ):
        xp = self.xp = op.xp
        self.op = op
        if base not in ("identity", "block"):
            raise ValueError(f"base must be 'identity' or 'block', got {base!r}")
        self.base = base
        self.Bis = None
        if base == "block":  # (I + X^T X)^{-1/2}
            ev, V = eigh(op.gram())
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
        Omega = YF = YG = None
        self.n_sketched = 0
        while True:
            new = gaussian((op.d, op.n_groups, r - self.n_sketched), op.X, rng)
            nF, nG = self._sketch(new)
            self.n_sketched = r
            new, nF = (xp.reshape(a, (N, -1)) for a in (new, nF))
            nG = None if nG is None else xp.reshape(nG, (N, -1))
            Omega, YF = (a if b is None else xp.concat([b, a], axis=1) for a, b in ((new, Omega), (nF, YF)))
            if nG is not None:
                YG = nG if YG is None else xp.concat([YG, nG], axis=1)
            Q, R = thin_qr(Omega)
            # H Q = H Omega R^{-1}, column by column a linear recombination
            self.YF = solve_triangular(R.T, YF.T, lower=True).T
            self.YG = None if YG is None else solve_triangular(R.T, YG.T, lower=True).T
            self.Q = Q
            self._cache.clear()
            self._unit = None
            self._set_rho(rho)
            if r >= target or to_float(self.lam[-1]) <= self.mu:
                break
            r = min(2 * r, target)
        self.rank = r

    def _sketch(self, W):
        """``F^T F W`` and ``G^T G W`` for W (d, 2PC, r): one batched application
        (base "block": ``B^{-1/2} F^T F B^{-1/2} W`` and None)."""
        op = self.op
        if self.Bis is None:
            return op.FT_batch(op.F_batch(W)), op.gram_batch(W)
        return self._block(op.FT_batch(op.F_batch(self._block(W)))), None

    def _block(self, W):
        """``(I (x) B^{-1/2}) W`` for W (d, ...): one GEMM."""
        xp = self.xp
        return xp.reshape(self.Bis @ xp.reshape(W, (W.shape[0], -1)), W.shape)

    def _set_rho(self, rho: float):
        """Recombine the stored sketches for ``rho`` and refactor (r x r work and
        one thin N x r SVD). Residual balancing moves rho by factors of 2, so the
        same few values recur: the last ``cache_size`` factorisations are kept."""
        self.rho = float(rho)
        hit = self._cache.pop(self.rho, None)
        if hit is None:
            if self.YG is None:  # H~ = (sketched part) / rho: the factors at rho = 1 rescale
                if self._unit is None:
                    self._unit = nystrom_eig(self.xp, self.Q, self.YF)
                U, lam = self._unit
                lam = lam / self.rho
            else:
                U, lam = nystrom_eig(self.xp, self.Q, self.YF / self.rho + self.YG)
            ratio = (lam[-1] + self.mu) / (lam + self.mu)
            hit = (U, lam, ratio - 1, ratio**0.5 - 1)
        self._cache[self.rho] = hit  # most recently used last
        while len(self._cache) > self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self.U, self.lam, self._coef, self._coef_sqrt = hit

    @property
    def lam_r(self) -> float:
        """Smallest retained eigenvalue: the error estimate of the adaptive rule."""
        return to_float(self.lam[-1])

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
        return self.apply(g) / (self.lam[-1] + self.mu)


class NystromCGSolver(CGSolver):
    """CG preconditioned with ``NystromPreconditioner`` (options ``rank``,
    ``rank0``, ``max_rank``, ``seed``, ``base`` besides CG's). ``info`` records the rank and
    ``lam_r`` after every rebuild."""

    name = "pcg-nystrom"

    def _build_preconditioner(self, rank="adaptive", rank0: int = 10, max_rank: int = 200, seed=0, base="identity"):
        pre = NystromPreconditioner(self.op, self.rho, rank=rank, rank0=rank0, max_rank=max_rank, seed=seed, base=base)
        self.info["nystrom_rank"] = pre.rank
        self.info["nystrom_lam_r"] = [pre.lam_r]
        return pre

    def with_rho(self, rho: float):
        new = super().with_rho(rho)
        new.info["nystrom_lam_r"].append(new.precond.lam_r)
        return new


class BlockNystromCGSolver(NystromCGSolver):
    """"pcg-nystrom" with ``base="block"`` by default: the exact block-diagonal part
    ``I (x) (I + X^T X)`` of A is applied exactly and only ``F^T F / rho`` is sketched
    (see the module doc); far smaller kappa(M^{-1} A) at the same rank when X^T X
    is ill-conditioned (notebooks/condition_numbers.ipynb)."""

    name = "pcg-nystrom-block"

    def _build_preconditioner(self, rank="adaptive", rank0: int = 10, max_rank: int = 200, seed=0, base="block"):
        return super()._build_preconditioner(rank=rank, rank0=rank0, max_rank=max_rank, seed=seed, base=base)


__all__ = ["NystromPreconditioner", "NystromCGSolver", "BlockNystromCGSolver", "nystrom_eig"]
