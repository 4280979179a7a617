"""The ADMM driver: Algorithm 1, over-relaxed and Anderson-accelerated, with its checks.

One iteration maps the point ``x = (v, s, lam, nu)`` (u, the warm start of the
u-step, rides along) to ``T(x)``:

    u   <- u-step                 (``admm.u_update``: the u-step solver)
    v   <- group soft-threshold   (``admm.v_update``, at the relaxed u)
    s   <- projection on s >= 0   (``admm.s_update``, at the relaxed G u)
    lam, nu <- dual ascent        (``admm.dual_update``)
    x   <- Anderson(x, T(x))      (``anderson.update``; T(x) itself when off)

``T(x)`` is what is checked (residuals and certificate): its u solves the u-step
exactly (or to the inner tolerance), which the certificate needs. Every
``check_every`` iterations the metrics are read back to the host; everything
else stays on the device. What happens at a check beyond the metrics (progress
bar, callback, divergence monitor, checkpoint, stopping, the penalty rule)
belongs to ``run``'s caller through ``on_check``.
"""
from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import numpy as np

from . import admm, anderson
from ._backend import Timer, as_float64, jit, namespace, to_float
from .admm import ADMMState
from .operators import Operators


class Point(NamedTuple):
    """What the loop carries: ``x``, the point the next iteration maps (its u is
    the warm start of the next u-step), and the accelerator's memory (None when
    acceleration is off)."""

    x: ADMMState
    accel: anderson.AndersonState | None


class Checked(NamedTuple):
    """A checked iterate ``T(x)``, its metrics, iteration count, penalty and the
    cone weight its slack and dual are scaled with."""

    state: ADMMState
    metrics: dict
    k: int
    rho: float
    cone_scale: float = 1.0


def _map_and_accelerate(op, usolver, FTY, beta, gamma, alpha, safeguard, pt: Point, k):
    """One fused iteration (compiled whole under JAX): ``(next point, T(x), u-step diagnostics)``."""
    fx, aux = admm.step_aux(op, usolver, FTY, beta, gamma, pt.x, k, alpha)
    if pt.accel is None:
        return Point(fx, None), fx, aux
    nxt, aa = anderson.update(op.xp, pt.accel, pt.x, fx, safeguard)
    return Point(nxt, aa), fx, aux


def _accelerate(aa, x, fx, safeguard):
    return anderson.update(namespace(fx.v), aa, x, fx, safeguard)


class Driver:
    """Runs ADMM on operators ``op`` with the u-step solver ``usolver``.

    Y : (n, C) targets in X's dtype. beta : group-lasso weight.
    alpha : over-relaxation in (0, 2). gamma : dual step length.
    memory : Anderson memory (0: no acceleration). safeguard : an extrapolated
    point is kept when its residual is at most ``safeguard`` times its base's.
    profile : time the phases separately (needs no device synchronisation only
    on NumPy and CPU torch). The certificate and residuals are computed in
    float64 even for float32 iterates.
    """

    def __init__(self, op: Operators, usolver, Y, beta: float, *, alpha: float = 1.0, gamma: float = 1.0,
                 memory: int = 0, safeguard: float = 1.0, profile: bool = True, eps_abs: float = 1e-6,
                 eps_rel: float = 1e-4, timer: Timer | None = None, rebuild=None):
        self.op, self.usolver, self.Y, self.beta = op, usolver, Y, float(beta)
        self.rebuild = rebuild  # (op, rho) -> a new u-step solver, after a change of the cone weight
        self.alpha, self.gamma, self.memory, self.safeguard = float(alpha), float(gamma), int(memory), float(safeguard)
        self.profile, self.eps_abs, self.eps_rel = bool(profile), float(eps_abs), float(eps_rel)
        self.timer = timer if timer is not None else Timer(op.X)
        self.xp = op.xp
        X = op.X
        self.FTY = op.FT(Y)
        whole = jit if usolver.jittable else (lambda f, ref: f)
        # a solver that is not jittable (a custom tol_schedule) compiles its own loop and runs op by op around it
        self._fused = whole(_map_and_accelerate, X)
        # else only the right-hand side is compiled (under JAX, one call instead of a dozen op by op)
        self._u = whole(admm.u_update, X) if usolver.jittable else partial(admm.u_update, rhs=jit(admm.u_rhs, X))
        self._v, self._s, self._dual = (jit(f, X) for f in (admm.v_update, admm.s_update, admm.dual_update))
        self._accel = jit(_accelerate, X)
        # the certificate in float64, whatever the iterates' dtype
        if str(X.dtype).endswith("float64"):
            self.cert_op, self.cert_Y, self.cast_array = op, Y, (lambda a: a)
            self.from_float64 = lambda a: a
        else:
            self.cert_op = Operators(as_float64(X), as_float64(op.D), op.C, op.cone_scale, op.n_pad)
            self.cert_Y = as_float64(Y)
            self.cast_array = as_float64
            self.from_float64 = lambda a: self.xp.astype(a, X.dtype)
        self._cast = lambda st: ADMMState(*(self.cast_array(a) for a in st))
        self._check = jit(admm.check, self.cert_op.X)

    @property
    def rho(self) -> float:
        return self.usolver.rho

    def start(self, state: ADMMState, accel=None) -> Point:
        """The loop's first point from an ADMM state (and a saved memory, if any)."""
        if self.memory and accel is None:
            accel = anderson.init(self.xp, state, self.memory)
        return Point(state, accel if self.memory else None)

    def iterate(self, pt: Point, k: int) -> tuple[Point, ADMMState]:
        """Iteration ``k``: returns the next point and ``T(x)``, the iterate to check."""
        t = time.perf_counter()
        if not self.profile:
            if self.usolver.jittable:
                nxt, fx, aux = self._fused(self.op, self.usolver, self.FTY, self.beta, self.gamma, self.alpha,
                                           self.safeguard, pt, k)
                self.usolver.record(aux)
                out = (nxt, fx)
            else:  # the compiled phases one after the other, with no synchronisation
                out = self._phases(pt, k, lambda phase: None)
            self.timer("iterations", t, sync=False)
            return out
        clock = [t]

        def tick(phase):
            clock[0] = self.timer(phase, clock[0])

        return self._phases(pt, k, tick)

    def _phases(self, pt: Point, k: int, tick) -> tuple[Point, ADMMState]:
        """One iteration phase by phase, calling ``tick(phase)`` after each."""
        x = pt.x
        st, aux = self._u(self.op, self.usolver, self.FTY, x, k)
        self.usolver.record(aux)
        tick("u")
        st = self._v(self.op, st, self.beta, self.rho, self.alpha)
        tick("v")
        st = self._s(self.op, st, self.alpha)
        tick("s")
        fx = self._dual(x, st, self.gamma, self.alpha)
        tick("dual")
        if pt.accel is None:
            return Point(fx, None), fx
        nxt, aa = self._accel(pt.accel, x, fx, self.safeguard)
        tick("accel")
        return Point(nxt, aa), fx

    def check(self, fx: ADMMState, x: ADMMState) -> dict:
        """Residuals and certificate of ``fx = T(x)`` as Python floats (one host read)."""
        m = self._check(self.cert_op, self.cert_Y, self.beta, self.rho, self._cast(fx), self._cast(x),
                        self.eps_abs, self.eps_rel)
        m = {key: to_float(val) for key, val in m.items()}
        m["gap"] = m["objective"] - m["dual_bound"]
        m["rel_gap"] = m["gap"] / max(abs(m["objective"]), np.finfo(float).tiny)
        return m

    def cast_state(self, st: ADMMState) -> ADMMState:
        """``st`` in the certificate's dtype (float64)."""
        return self._cast(st)

    def endgame_state(self, u, ssnal_state) -> ADMMState:
        """An ADMM state (X's dtype, slack and dual weighted by the cone weight) at the
        endgame's point ``u`` (X's dtype) with its multipliers: v = u, s = max(G u, 0) and the
        scaled duals of ``ssnal_state`` (a warm start that continues from there)."""
        xp, sc = self.xp, self.op.cone_scale
        Gu = self.op.G(u)
        lam = self.from_float64(ssnal_state.lam) / self.rho
        nu = self.from_float64(ssnal_state.nu) / (self.rho * sc)
        return ADMMState(u, u, xp.maximum(Gu, 0), lam, nu, Gu)

    def change_rho(self, pt: Point, factor: float, ratio_factor: float = 1.0, rebuild=None) -> Point:
        """Multiply the penalty of u = v by ``factor`` and that of G u = s by
        ``factor * ratio_factor``. With their ratio unchanged only rho moves (free for
        every u-step solver); otherwise the operators get the new ``cone_scale`` and
        ``rebuild(op, rho)`` makes a new u-step solver (a new factorisation). The
        scaled duals and the weighted slack are rescaled so that the unscaled
        multipliers and slack stay the same, and the accelerator's memory is dropped
        (the map changed)."""
        rho = self.rho * factor
        x = admm.scale_duals(pt.x, 1.0 / factor)
        if ratio_factor == 1.0:
            self.usolver = self.usolver.with_rho(rho)
        else:
            sigma = self.op.cone_scale * ratio_factor**0.5
            x = admm.rescale_cone(x, sigma / self.op.cone_scale)
            self.op = self.op.with_cone_scale(sigma)
            self.cert_op = self.cert_op.with_cone_scale(sigma)
            self.usolver = (rebuild or self.rebuild)(self.op, rho)
        return Point(x, None if pt.accel is None else anderson.reset(pt.accel))

    def run(self, pt: Point, k: int, max_iter: int, check_every: int, on_check, deadline: float | None = None):
        """Iterate from ``pt`` (after ``k`` iterations) up to ``max_iter``.

        At every ``check_every``-th iteration, at ``max_iter`` and once past
        ``deadline`` (``time.perf_counter()`` seconds), calls
        ``on_check(k, fx, x, pt) -> (status, pt)``; a status other than None ends
        the run (the hook may also return a changed point, e.g. after a penalty
        change). Returns ``(status, k, pt)``, status "max_iter" when the
        iterations ran out.
        """
        while k < max_iter:
            k += 1
            last = k == max_iter or (deadline is not None and time.perf_counter() > deadline)
            x = pt.x
            pt, fx = self.iterate(pt, k)
            if k % check_every and not last:
                continue
            status, pt = on_check(k, fx, x, pt)
            if status is not None:
                return status, k, pt
        return "max_iter", k, pt

    def accel_counts(self, pt: Point) -> dict:
        """Extrapolations accepted and rejected so far (host read)."""
        if pt.accel is None:
            return {}
        return {"anderson_accepted": int(to_float(pt.accel.accepted)),
                "anderson_rejected": int(to_float(pt.accel.rejected))}


__all__ = ["Driver", "Point", "Checked"]
