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
with ``precond="none"``) and the exact line search: f is quadratic, so

    f(u + t delta) - f(u) = t g^T delta + t^2 q / 2,   q = delta^T A_jj delta,

is minimised at ``t = -g^T delta / q`` (a ratio of two inner products; no
search, no host read), where f falls by ``(g^T delta)^2 / (2 q)``. A direction
that is not a descent direction gets t = 0. (The reference implementation's
backtracking added the decrease term where it must be subtracted, which
accepts steps that increase f.)

``F u`` is kept up to date incrementally (``F u += t F_j delta``), so a block
step costs GEMMs of the block's size only; the full residual ``A u - b`` is
formed once per sweep for the stopping test ``||A u - b|| <= tol_k ||b||``
with the same summable schedule as CG.

Under JAX the whole u-step is one compiled ``lax.while_loop`` over sweeps, a
``lax.fori_loop`` over the blocks and a ``lax.switch`` on the block drawn (the
blocks may differ in size); the order of each sweep comes from ``jax.random``
keyed by (seed, k, sweep), so it changes with k without a recompilation.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np

from .._backend import (device_of, fori_loop, jit, permutation, pytree, set_index, spd_inverse, switch, to_float,
                        to_numpy, while_loop)
from .base import Diagnostics, ToleranceSchedule, record
from .preconditioners import GramPreconditioner, JacobiPreconditioner, NystromPreconditioner


def _dot(xp, a, b):
    return xp.sum(a * b)


def xp_eye(op):
    return op.xp.eye(op.d, dtype=op.X.dtype, device=device_of(op.X))


@pytree("op", "XtX", "rho", "blocks", "preconds", "perm", "inv_perm",
        static=("bounds", "max_sweeps", "min_sweeps", "tolerance", "key", "record_objective"))
class RBCDSolver(Diagnostics):
    """Options: ``block_size`` (patterns per block; default about P/4),
    ``max_sweeps`` and ``min_sweeps`` (passes over all blocks per u-step),
    ``inner_tol``, ``inner_tol_power``, ``inner_tol_min``, ``tol_schedule`` (as
    for CG), ``precond`` ("jacobi", "nystrom", "gram" or "none"), ``block_rank`` (rank
    of each block's Nyström preconditioner, default "adaptive", capped at
    ``max_block_rank``; ``nystrom_base`` is its ``base``), ``seed``, and
    ``record_objective`` (store f after every block step in
    ``info["rbcd_objective"]``, one list per u-step).

    ``info``: ``rbcd_sweeps`` (per u-step), ``rbcd_sweeps_mean``, ``rbcd_blocks``
    (and ``rbcd_block_ranks`` for "nystrom"); read back when ``info`` is read.
    """

    name = "rbcd"
    jittable = True  # no host reads in a u-step (False with a tol_schedule)
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
        seed=0,
        record_objective: bool = False,
    ):
        t0 = time.perf_counter()
        precond = self.default_precond if precond is None else precond
        if precond not in ("jacobi", "nystrom", "gram", "none"):
            raise ValueError(f"precond must be 'jacobi', 'nystrom', 'gram' or 'none', got {precond!r}")
        if int(max_sweeps) < 1:
            raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps!r}")
        self.op = op
        self.rho = float(rho)
        self.XtX = op.gram()
        rng = np.random.default_rng(seed)
        P = op.P
        bs = max(1, math.ceil(P / 4)) if block_size is None else int(block_size)
        if not 1 <= bs:
            raise ValueError(f"block_size must be >= 1, got {block_size!r}")
        self.block_size = min(bs, P)
        self.perm = rng.permutation(P)
        self.inv_perm = np.argsort(self.perm)
        op_p = op.subset(self.perm)
        self.bounds = tuple((s, min(s + self.block_size, P)) for s in range(0, P, self.block_size))
        self.blocks = [op_p.subset(slice(s, e)) for s, e in self.bounds]
        self.precond_kind = precond
        self.name = "rbcd-nystrom" if precond == "nystrom" else "rbcd"
        if precond == "jacobi":
            self.preconds = [JacobiPreconditioner(o, rho) for o in self.blocks]
        elif precond == "nystrom":
            self.preconds = [
                NystromPreconditioner(o, rho, rank=block_rank, max_rank=max_block_rank, seed=rng, base=nystrom_base)
                for o in self.blocks
            ]
        elif precond == "gram":
            Binv = spd_inverse(xp_eye(op) + self.XtX)
            self.preconds = [GramPreconditioner(Binv)] * len(self.blocks)
        else:
            self.preconds = None
        self.key = int(rng.integers(2**31))  # seeds the block order of every sweep (see ``permutation``)
        self.max_sweeps, self.min_sweeps = int(max_sweeps), int(min_sweeps)
        self.tolerance = ToleranceSchedule(inner_tol, inner_tol_power, inner_tol_min, tol_schedule)
        if tol_schedule is not None:  # an arbitrary callable may not accept a traced k
            self.jittable = False
        self.record_objective = bool(record_objective)
        self._init_diagnostics({
            "precompute_s": time.perf_counter() - t0,
            "rbcd_sweeps": [],
            "rbcd_sweeps_mean": 0.0,
            "rbcd_blocks": len(self.blocks),
        })
        if precond == "nystrom":
            self._info["rbcd_block_ranks"] = [p.rank for p in self.preconds]

    def with_rho(self, rho: float) -> "RBCDSolver":
        new = copy.copy(self)  # shares info
        new.rho = float(rho)
        if self.preconds is not None:
            new.preconds = [p.with_rho(rho) for p in self.preconds]
        return new

    # -- layout: (d, 2PC) <-> tuple of per-block (d, 2 P_j C) arrays, permuted patterns
    def _split(self, u):
        xp, op = self.op.xp, self.op
        u4 = xp.take(xp.reshape(u, (op.d, 2, op.P, op.C)), xp.asarray(self.perm), axis=2)
        return tuple(xp.reshape(u4[:, :, s:e, :], (op.d, 2 * (e - s) * op.C)) for s, e in self.bounds)

    def _join(self, parts):
        xp, op = self.op.xp, self.op
        u4 = xp.concat([xp.reshape(p, (op.d, 2, e - s, op.C)) for p, (s, e) in zip(parts, self.bounds)], axis=2)
        return xp.reshape(xp.take(u4, xp.asarray(self.inv_perm), axis=2), (op.d, op.n_groups))

    def residual(self, u, Fu, b):
        """A u - b, given F u."""
        return u + self.op.FT(Fu) / self.rho + self.XtX @ u - b

    def _block_step(self, j, uj, bj, Fu):
        """One exact line-search step on block j. Returns (uj, Fu, change of f)."""
        xp, o, rho = self.op.xp, self.blocks[j], self.rho
        g = uj + o.FT(Fu) / rho + self.XtX @ uj - bj
        delta = -(g if self.preconds is None else self.preconds[j].descent(g))
        Fd = o.F(delta)
        slope = _dot(xp, g, delta)
        q = _dot(xp, delta, delta + self.XtX @ delta) + _dot(xp, Fd, Fd) / rho  # delta^T A_jj delta
        ok = (slope < 0) & (q > 0)
        t = xp.where(ok, -slope / xp.where(ok, q, xp.ones_like(q)), xp.zeros_like(slope))
        return uj + t * delta, Fu + t * Fd, t * slope + 0.5 * t * t * q

    def step(self, b, u0=None, k=1):
        """``(u, (sweeps, objective trace or None))``, compiled whole under JAX."""
        u0 = self.op.xp.zeros_like(b) if u0 is None else u0
        return jit(_rbcd, b)(self, b, u0, self.tolerance(k), k)

    def _read(self, aux):
        sweeps, trace = aux
        info, n = self._info, int(to_float(sweeps))
        info["rbcd_sweeps"].append(n)
        info["rbcd_sweeps_mean"] = sum(info["rbcd_sweeps"]) / len(info["rbcd_sweeps"])
        if trace is not None:
            record(info, "rbcd_objective", [float(f) for f in to_numpy(trace)[: 1 + n * len(self.bounds)]])


def _rbcd(s: RBCDSolver, b, u0, tol, k):
    """Sweeps of ``s`` from ``u0`` until ``||A u - b|| <= tol ||b||`` (after
    ``min_sweeps``) or ``max_sweeps``: ``(u, (sweeps, trace))``."""
    op, xp = s.op, s.op.xp
    nb = len(s.bounds)
    target = tol * tol * _dot(xp, b, b)
    Fu = op.F(u0)
    r = s.residual(u0, Fu, b)
    bparts = s._split(b)
    trace = None
    if s.record_objective:  # f after every block step; NaN past the last sweep
        trace = xp.full((1 + s.max_sweeps * nb,), float("nan"), dtype=b.dtype, device=device_of(b))
        trace = set_index(trace, 0, 0.5 * _dot(xp, u0, r - b))

    def branch(j):
        def run(c):
            parts, Fu = c
            uj, Fu, change = s._block_step(j, parts[j], bparts[j], Fu)
            return parts[:j] + (uj,) + parts[j + 1:], Fu, change
        return run

    branches = [branch(j) for j in range(nb)]

    def cond(c):
        _, _, rr, sweep, _ = c
        return ((rr > target) | (sweep < s.min_sweeps)) & (sweep < s.max_sweeps) & (rr > 0)

    def body(c):
        parts, Fu, _, sweep, trace = c
        order = permutation(nb, s.key, (k, sweep), b)

        def visit(i, c2):
            parts, Fu, trace = c2
            parts, Fu, change = switch(order[i], branches, (parts, Fu), b)
            if trace is not None:
                at = sweep * nb + i
                trace = set_index(trace, at + 1, trace[at] + change)
            return parts, Fu, trace

        parts, Fu, trace = fori_loop(0, nb, visit, (parts, Fu, trace), b)
        r = s.residual(s._join(parts), Fu, b)
        return parts, Fu, _dot(xp, r, r), sweep + 1, trace

    parts, _, _, sweeps, trace = while_loop(cond, body, (s._split(u0), Fu, _dot(xp, r, r), 0, trace), b)
    return s._join(parts), (sweeps, trace)


class NystromRBCDSolver(RBCDSolver):
    """RBCD whose block steps are preconditioned by a Nyström approximation of
    each block's matrix (``precond="nystrom"``)."""

    name = "rbcd-nystrom"
    default_precond = "nystrom"
