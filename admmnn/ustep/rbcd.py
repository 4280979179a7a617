"""Randomized block coordinate descent on the u-subproblem ("rbcd",
"rbcd-nystrom"), after Bai, Gautam & Sojoudi (2022), Algorithm 2.

The u-step minimises the quadratic

    f(u) = 0.5 u^T A u - b^T u,   A = I + F^T F / rho + I_{2PC} (x) X^T X.

The P patterns are split once, at random, into blocks of ``block_size``
patterns (each block holds the 2 * block_size * C groups of its patterns). A
sweep visits the blocks in a fresh random order; at block j it takes the
gradient ``g_j = (A u - b)_j``, a direction ``delta = -M_j^{-1} g_j`` (M_j is
diag(A_jj) for "rbcd", a rank-r Nyström preconditioner of the block's own
matrix ``A_jj = I + F_j^T F_j / rho + I (x) X^T X`` for "rbcd-nystrom", or I
with ``precond="none"``) and a backtracking line search on the true objective:
starting from t = 1, halve t until the Armijo condition

    f(u + t delta) <= f(u) + c t g_j^T delta       (g_j^T delta < 0, 0 < c < 1/2)

holds. On a quadratic ``f(u + t delta) - f(u) = t g^T delta + t^2 q / 2`` with
``q = delta^T A_jj delta`` exactly, so each trial costs two scalar operations
(no extra operator products) and every accepted step strictly decreases f.
(The two scalars are read back to the host once per block step; a JAX port can
replace the loop by its closed form ``t = 2^-m``, ``m = ceil(log2(q / (2 (1 - c) |g^T delta|)))``.) (The reference implementation added the decrease term where it
must be subtracted, which accepts steps that increase f.)

``F u`` is kept up to date incrementally (``F u += t F_j delta``), so a block
step costs GEMMs of the block's size only; the full residual ``A u - b`` is
formed once per sweep for the stopping test ``||A u - b|| <= tol_k ||b||``
with the same summable schedule as CG.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np

from .._backend import device_of, spd_inverse, to_float
from .base import ToleranceSchedule, record
from .cg import JacobiPreconditioner
from .nystrom import NystromPreconditioner


def _dot(xp, a, b):
    return xp.sum(a * b)


def xp_eye(op):
    return op.xp.eye(op.d, dtype=op.X.dtype, device=device_of(op.X))


class _GramPreconditioner:
    """``(I + X^T X)^{-1}`` on every group: the exact inverse of A's group-diagonal part."""

    def __init__(self, Binv):
        self.Binv = Binv

    def descent(self, g):
        return self.Binv @ g

    def with_rho(self, rho):
        return self


class RBCDSolver:
    """Options: ``block_size`` (patterns per block; default about P/4),
    ``max_sweeps`` and ``min_sweeps`` (passes over all blocks per u-step),
    ``inner_tol``, ``inner_tol_power``, ``inner_tol_min``, ``tol_schedule`` (as
    for CG), ``precond`` ("jacobi", "nystrom" or "none"), ``block_rank`` (rank
    of each block's Nyström preconditioner, default "adaptive", capped at
    ``max_block_rank``; ``nystrom_base`` is its ``base``), ``armijo``
    (the constant c), ``seed``, and ``record_objective`` (store f after every
    accepted step in ``info["rbcd_objective"]``, one list per u-step).

    ``info``: ``rbcd_sweeps`` (per u-step), ``rbcd_sweeps_mean``,
    ``rbcd_halvings`` (total step halvings of the line search).
    """

    name = "rbcd"
    jittable = False  # its line search reads scalars on the host
    default_precond = "jacobi"

    def __init__(
        self,
        op,
        rho: float,
        *,
        block_size: int | None = None,
        max_sweeps: int = 10,
        min_sweeps: int = 1,
        inner_tol: float = 1e-3,
        inner_tol_power: float = 1.2,
        inner_tol_min: float = 1e-12,
        tol_schedule=None,
        precond: str | None = None,
        block_rank="adaptive",
        max_block_rank: int = 100,
        nystrom_base: str = "identity",
        armijo: float = 1e-4,
        seed=0,
        record_objective: bool = False,
    ):
        t0 = time.perf_counter()
        precond = self.default_precond if precond is None else precond
        if precond not in ("jacobi", "nystrom", "gram", "none"):
            raise ValueError(f"precond must be 'jacobi', 'nystrom', 'gram' or 'none', got {precond!r}")
        if not 0 < armijo < 0.5:
            raise ValueError(f"armijo must lie in (0, 0.5), got {armijo!r}")
        if int(max_sweeps) < 1:
            raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps!r}")
        self.op = op
        self.rho = float(rho)
        self.XtX = op.gram()
        self.rng = np.random.default_rng(seed)
        P = op.P
        bs = max(1, math.ceil(P / 4)) if block_size is None else int(block_size)
        if not 1 <= bs:
            raise ValueError(f"block_size must be >= 1, got {block_size!r}")
        self.block_size = min(bs, P)
        self.perm = self.rng.permutation(P)
        self.inv_perm = np.argsort(self.perm)
        op_p = op.subset(self.perm)
        self.bounds = [(s, min(s + self.block_size, P)) for s in range(0, P, self.block_size)]
        self.blocks = [op_p.subset(slice(s, e)) for s, e in self.bounds]
        self.precond_kind = precond
        self.name = "rbcd-nystrom" if precond == "nystrom" else "rbcd"
        if precond == "jacobi":
            self.preconds = [JacobiPreconditioner(o, rho) for o in self.blocks]
        elif precond == "nystrom":
            self.preconds = [
                NystromPreconditioner(o, rho, rank=block_rank, max_rank=max_block_rank, seed=self.rng, base=nystrom_base)
                for o in self.blocks
            ]
        elif precond == "gram":
            Binv = spd_inverse(xp_eye(op) + self.XtX)
            self.preconds = [_GramPreconditioner(Binv)] * len(self.blocks)
        else:
            self.preconds = None
        self.max_sweeps, self.min_sweeps = int(max_sweeps), int(min_sweeps)
        self.tolerance = ToleranceSchedule(inner_tol, inner_tol_power, inner_tol_min, tol_schedule)
        self.armijo = float(armijo)
        self.record_objective = bool(record_objective)
        self.info = {
            "precompute_s": time.perf_counter() - t0,
            "rbcd_sweeps": [],
            "rbcd_sweeps_mean": 0.0,
            "rbcd_halvings": 0,
            "rbcd_blocks": len(self.blocks),
        }
        if precond == "nystrom":
            self.info["rbcd_block_ranks"] = [p.rank for p in self.preconds]

    def with_rho(self, rho: float) -> "RBCDSolver":
        new = copy.copy(self)  # shares info and the random generator
        new.rho = float(rho)
        if self.preconds is not None:
            new.preconds = [p.with_rho(rho) for p in self.preconds]
        return new

    # -- layout: (d, 2PC) <-> list of per-block (d, 2 P_j C) arrays, permuted patterns
    def _split(self, u):
        xp, op = self.op.xp, self.op
        u4 = xp.take(xp.reshape(u, (op.d, 2, op.P, op.C)), xp.asarray(self.perm), axis=2)
        return [xp.reshape(u4[:, :, s:e, :], (op.d, 2 * (e - s) * op.C)) for s, e in self.bounds]

    def _join(self, parts):
        xp, op = self.op.xp, self.op
        u4 = xp.concat([xp.reshape(p, (op.d, 2, e - s, op.C)) for p, (s, e) in zip(parts, self.bounds)], axis=2)
        return xp.reshape(xp.take(u4, xp.asarray(self.inv_perm), axis=2), (op.d, op.n_groups))

    def residual(self, u, Fu, b):
        """A u - b, given F u."""
        return u + self.op.FT(Fu) / self.rho + self.XtX @ u - b

    def _block_step(self, j, uj, bj, Fu):
        """One line-searched step on block j. Returns (uj, Fu, f change, halvings)."""
        xp, o, rho = self.op.xp, self.blocks[j], self.rho
        g = uj + o.FT(Fu) / rho + self.XtX @ uj - bj
        delta = -(g if self.preconds is None else self.preconds[j].descent(g))
        Fd = o.F(delta)
        slope = to_float(_dot(xp, g, delta))
        q = to_float(_dot(xp, delta, delta + self.XtX @ delta) + _dot(xp, Fd, Fd) / rho)  # delta^T A_jj delta
        t, halvings = self._backtrack(slope, q)
        if t == 0.0:
            return uj, Fu, 0.0, halvings
        return uj + t * delta, Fu + t * Fd, t * slope + 0.5 * t * t * q, halvings

    def _backtrack(self, slope: float, q: float):
        """Backtracking on the true objective along delta: from t = 1, halve t until
        ``f(u + t delta) - f(u) = t slope + t^2 q / 2 <= c t slope`` (Armijo).
        Returns (t, halvings); t = 0 when delta is not a descent direction."""
        if not slope < 0:
            return 0.0, 0
        t, halvings = 1.0, 0
        while t * slope + 0.5 * t * t * q > self.armijo * t * slope:
            t *= 0.5
            halvings += 1
            if halvings > 200:  # cannot happen for slope < 0 and finite q
                return 0.0, halvings
        return t, halvings

    def solve(self, b, u0=None, k: int = 1):
        op, xp = self.op, self.op.xp
        u = xp.zeros_like(b) if u0 is None else u0
        bnorm = math.sqrt(to_float(_dot(xp, b, b)))
        target = self.tolerance(k) * bnorm
        Fu = op.F(u)
        r = self.residual(u, Fu, b)
        rnorm = math.sqrt(to_float(_dot(xp, r, r)))
        parts, bparts = self._split(u), self._split(b)
        f = 0.5 * to_float(_dot(xp, u, r - b)) if self.record_objective else None
        trace = [f] if self.record_objective else None
        sweeps, halvings = 0, 0
        while (rnorm > target or sweeps < self.min_sweeps) and sweeps < self.max_sweeps and rnorm > 0:
            for j in self.rng.permutation(len(self.blocks)):
                parts[j], Fu, change, m = self._block_step(j, parts[j], bparts[j], Fu)
                halvings += m
                if trace is not None:
                    f = f + change
                    trace.append(f)
            sweeps += 1
            u = self._join(parts)
            r = self.residual(u, Fu, b)
            rnorm = math.sqrt(to_float(_dot(xp, r, r)))
        info = self.info
        info["rbcd_sweeps"].append(sweeps)
        info["rbcd_sweeps_mean"] = sum(info["rbcd_sweeps"]) / len(info["rbcd_sweeps"])
        info["rbcd_halvings"] += halvings
        if trace is not None:
            record(info, "rbcd_objective", trace)
        return u


class NystromRBCDSolver(RBCDSolver):
    """RBCD whose block steps are preconditioned by a Nyström approximation of
    each block's matrix (``precond="nystrom"``)."""

    name = "rbcd-nystrom"
    default_precond = "nystrom"
