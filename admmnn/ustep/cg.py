"""Conjugate gradient u-steps: plain CG ("cg") and CG preconditioned with
``diag(A)`` ("pcg-jacobi") or a randomized Nyström approximation
("pcg-nystrom", "pcg-nystrom-block"); the preconditioners are in
``preconditioners.py``. One loop serves them all.

Every product with ``A = I + F^T F / rho + I_{2PC} (x) X^T X`` is matrix-free
(``apply_A``: two GEMMs with X, one with X^T X). CG is warm-started from the
previous u and stops when ``||b - A u|| <= tol_k ||b||`` with the summable
schedule ``tol_k = inner_tol * k**-inner_tol_power`` (see ``ToleranceSchedule``).

The loop is a pure step function on an explicit ``CGState`` run by
``_backend.while_loop``: under JAX the whole solve is one compiled
``lax.while_loop`` (compiled once per problem shape; rho, the preconditioner's
arrays and the tolerance are traced, so neither a new rho nor a new k
recompiles), and the iteration count and final residual stay on the device
until ``info`` is read. ``step`` returns them as its diagnostics, so the driver
compiles the whole ADMM iteration around the solve (``jittable``).
"""
from __future__ import annotations

import copy
import time
from typing import NamedTuple

from .._backend import jit, pytree, to_float, while_loop
from .base import Diagnostics, ToleranceSchedule, apply_A, record
from .preconditioners import JacobiPreconditioner, NystromPreconditioner


class CGState(NamedTuple):
    x: object  # iterate (d, 2PC)
    r: object  # residual b - A x
    p: object  # search direction
    rz: object  # <r, M^-1 r> (0-d)
    rr: object  # <r, r> (0-d)


def _dot(xp, a, b):
    return xp.sum(a * b)


def cg_init(xp, matvec, precond, b, x0) -> CGState:
    r = b - matvec(x0)
    z = precond(r)
    return CGState(x0, r, z, _dot(xp, r, z), _dot(xp, r, r))


def cg_step(xp, matvec, precond, st: CGState) -> CGState:
    """One (preconditioned) conjugate gradient iteration."""
    Ap = matvec(st.p)
    alpha = st.rz / _dot(xp, st.p, Ap)
    x = st.x + alpha * st.p
    r = st.r - alpha * Ap
    z = precond(r)
    rz = _dot(xp, r, z)
    p = z + (rz / st.rz) * st.p
    return CGState(x, r, p, rz, _dot(xp, r, r))


def pcg(xp, matvec, precond, b, x0, tol, max_iter: int, min_iter: int = 0):
    """Solve ``A x = b`` from ``x0`` until ``||r|| <= tol ||b||`` (after at least
    ``min_iter`` iterations) or ``max_iter`` iterations.

    Returns ``(x, iterations, ||r|| / ||b||)``; the last two are 0-d arrays (or
    scalars) of the backend, not read back to the host. ``b = 0`` gives ``x = 0``.
    """
    bb = _dot(xp, b, b)
    target = tol * tol * bb

    def cond(carry):
        st, it = carry
        # rz <= 0: a preconditioner that rounding made indefinite (float32); stop before dividing by it
        return ((st.rr > target) | (it < min_iter)) & (it < max_iter) & (st.rr > 0) & (st.rz > 0) & (bb > 0)

    def body(carry):
        st, it = carry
        return cg_step(xp, matvec, precond, st), it + 1

    st, it = while_loop(cond, body, (cg_init(xp, matvec, precond, b, x0), 0), b)
    nonzero = bb > 0
    x = xp.where(nonzero, st.x, xp.zeros_like(st.x))
    rel = xp.where(nonzero, xp.sqrt(st.rr / xp.where(nonzero, bb, 1)), 0)
    return x, it, rel


def _solve(solver, b, x0, tol):
    """The u-step of a CG-family ``solver`` (compiled whole under JAX)."""
    return pcg(solver.op.xp, solver.matvec, solver._apply_precond(), b, x0, tol, solver.max_cg_iter,
               solver.min_cg_iter)


def _identity(r):
    return r


@pytree("op", "XtX", "rho", "precond", static=("max_cg_iter", "min_cg_iter", "tolerance"))
class CGSolver(Diagnostics):
    """Plain conjugate gradient on ``A u = b``, warm-started from the previous u.

    Options: ``max_cg_iter`` and ``min_cg_iter`` (per u-step; one step from the
    warm start is cheap and keeps u moving), ``inner_tol``, ``inner_tol_power``,
    ``inner_tol_min`` (the schedule ``max(inner_tol * k**-power, inner_tol_min)``
    of relative residuals) or ``tol_schedule`` (a callable k -> tolerance).
    The default schedule (1e-4 k^-1.5) is far tighter than the former 1e-2 k^-1.2,
    under which the accelerated, over-relaxed ADMM stalled: Fashion-MNIST 0 vs 6,
    n = 1000, P = 10, beta = 1e-3, pcg-nystrom-block ended at a gap of 0.50 after 600
    iterations (4.5 CG iterations per u-step) with the former, and certified in 290
    iterations (10.1 per u-step) with the default; 1e-6 k^-1.2 certified in 140
    (as the exact u-step) but at 32 per u-step. A fixed 1e-6 stalled (gap 0.87
    after 400); ``benchmarks/results/inner_tolerance.txt``.
    ``inner_tol_min`` is raised to 100 eps of X's dtype.
    ``info["cg_iters"]`` lists the iterations of every u-step,
    ``info["cg_rel_residual"]`` their final relative residuals, and
    ``info["cg_iters_mean"]`` is their running average (read back from the
    device when ``info`` is read, not at every u-step).
    """

    name = "cg"
    jittable = True  # no host reads: the driver compiles the whole iteration (False with a tol_schedule)

    def __init__(
        self,
        op,
        rho: float,
        *,
        max_cg_iter: int = 500,
        min_cg_iter: int = 1,
        inner_tol: float = 1e-4,
        inner_tol_power: float = 1.5,
        inner_tol_min: float = 1e-12,
        tol_schedule=None,
        **precond_options,
    ):
        t0 = time.perf_counter()
        if int(max_cg_iter) < 1:
            raise ValueError(f"max_cg_iter must be >= 1, got {max_cg_iter!r}")
        self.op = op
        self.rho = float(rho)
        self.XtX = op.gram()
        self.max_cg_iter = int(max_cg_iter)
        self.min_cg_iter = int(min_cg_iter)
        floor = max(float(inner_tol_min), 100 * float(op.xp.finfo(op.X.dtype).eps))
        self.tolerance = ToleranceSchedule(inner_tol, inner_tol_power, floor, tol_schedule)
        self._init_diagnostics({"cg_iters": [], "cg_iters_mean": 0.0, "cg_rel_residual": []})
        if tol_schedule is not None:  # an arbitrary callable may not accept a traced k
            self.jittable = False
        self.precond = self._build_preconditioner(**precond_options)
        self.info["precompute_s"] = time.perf_counter() - t0

    def _build_preconditioner(self, **options):
        _no_options(self.name, options)
        return None

    def _apply_precond(self):
        return _identity if self.precond is None else self.precond.apply

    def matvec(self, u):
        return apply_A(self.op, self.XtX, u, self.rho)

    def _read(self, aux):
        it, rel = aux
        iters = self._info["cg_iters"]
        iters.append(int(to_float(it)))
        record(self._info, "cg_rel_residual", to_float(rel))
        self._info["cg_iters_mean"] = sum(iters) / len(iters)

    def step(self, b, u0=None, k=1):
        """``(u, (iterations, relative residual))``, both counts device scalars."""
        x0 = self.op.xp.zeros_like(b) if u0 is None else u0
        u, it, rel = jit(_solve, b)(self, b, x0, self.tolerance(k))
        return u, (it, rel)

    def with_rho(self, rho: float):
        new = copy.copy(self)  # shares ``info`` (and pending counts), so the counts run on across rho changes
        new.rho = float(rho)
        if self.precond is not None:
            new.precond = self.precond.with_rho(rho)
        return new


class JacobiCGSolver(CGSolver):
    """CG preconditioned with ``diag(A)`` (see ``JacobiPreconditioner``)."""

    name = "pcg-jacobi"

    def _build_preconditioner(self, **options):
        _no_options(self.name, options)
        return JacobiPreconditioner(self.op, self.rho)


def _no_options(name, options):
    if options:
        raise TypeError(f"solver {name!r} got unexpected options {sorted(options)}")


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
    (see ``preconditioners.py``); far smaller kappa(M^{-1} A) at the same rank when X^T X
    is ill-conditioned (notebooks/condition_numbers.ipynb)."""

    name = "pcg-nystrom-block"

    def _build_preconditioner(self, rank="adaptive", rank0: int = 10, max_rank: int = 200, seed=0, base="block"):
        return super()._build_preconditioner(rank=rank, rank0=rank0, max_rank=max_rank, seed=seed, base=base)
