"""Semismooth Newton augmented Lagrangian (SSNAL) on the primal program: the endgame.

The program (sum form; one group j per sign, pattern and output column)

    min_u 0.5 ||F u - Y||^2 + beta sum_j ||u_j||   s.t.  G_j u_j >= 0

is split as u = v (group lasso on v) and G u = s >= 0, with multipliers ``lam``
(d, 2PC) and ``nu <= 0`` (n, 2PC) in unscaled units. Minimising the augmented
Lagrangian over v and s in closed form leaves a smooth function of u alone,

    phi(u) = 0.5 ||F u - Y||^2 + sigma Env(u + lam / sigma) + tau / 2 ||min(G u + nu / tau, 0)||^2,

where ``Env`` is the Moreau envelope of ``beta ||.||`` at 1/sigma (a Huber function of
each group's norm). The method (Li, Sun & Toh 2018; Zhang, Zhang, Sun & Toh 2020):

* ``inner``: semismooth Newton on phi: direction from a reduced Newton system (``system``), step by
  Armijo backtracking evaluated for all candidate steps at once (phi along a line needs
  no new GEMM), until ``max_j ||grad_j|| <= eps_k beta``;
* ``update_multipliers``: ``lam = sigma (x - prox(x))``, ``nu = tau min(G u + nu/tau, 0)``;
* ``certify``: the library's certificate at u (and at u with its zero groups zeroed);
* then sigma, tau grow by ``GROWTH`` (capped) and eps_k shrinks by 10.

``run`` starts from an ADMM state and returns the best point and bound it found.
Everything is array code in the namespace of X; one scalar per Newton step is read
back (the inner stopping test).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

from .. import certificate
from .._backend import device_of, to_float
from .system import DenseNewton

#: Armijo sufficient-decrease constant and the candidate steps 1, 1/2, ..., 2^-(STEPS-1)
ARMIJO = 1e-4
STEPS = 24
#: an inner solve stops when a Newton step whose predicted decrease is below this times phi (the
#: rounding of phi) did not halve the largest gradient either
FLAT = 1e-13
#: inner tolerance (units of beta); first, factor per outer step, floor
EPS_START, EPS_FACTOR, EPS_FLOOR = 1e-2, 0.1, 1e-8
#: penalty growth per outer step, and the cap relative to the start (noisy multipliers beyond)
GROWTH, PENALTY_CAP = 5.0, 1e6
#: the starting penalties relative to ADMM's (sigma0 = START_FACTOR rho, tau0 = START_FACTOR rho_2)
START_FACTOR = 10.0


class SSNALState(NamedTuple):
    """u, lam: (d, 2PC); nu (n, 2PC), <= 0; sigma, tau: penalties of u = v and G u = s."""

    u: object
    lam: object
    nu: object
    sigma: float
    tau: float


class Candidate(NamedTuple):
    """A certified point: u (d, 2PC) with its objective, cone violation and the dual bound
    of the multipliers it came with."""

    u: object
    objective: float
    cone_violation: float
    dual_bound: float


class EndgameResult(NamedTuple):
    """What ``run`` returns: the best primal point (None if no point was acceptable), the
    best dual bound found, and counts: outer steps, Newton steps, seconds, how it ended."""

    best: Candidate | None
    dual_bound: float
    outer_steps: int
    newton_steps: int
    seconds: float
    reason: str
    state: SSNALState


def _group_sums(xp, a, P, C):
    """Sum of a per-group quantity (..., 2PC) over the groups of each output column -> (..., C)."""
    return xp.sum(xp.reshape(a, a.shape[:-1] + (2 * P, C)), axis=-2)


class Problem:
    """The data of the endgame in one namespace: X (n, d), D (n, P), Y (n, C), beta; the
    operators ``op`` with cone_scale 1 (unscaled G)."""

    def __init__(self, op, Y, beta: float):
        self.op = op.with_cone_scale(1.0)
        self.xp, self.Y, self.beta = op.xp, Y, float(beta)
        self.n, self.d, self.P, self.C = op.n, op.d, op.P, op.C

    def pieces(self, st: SSNALState):
        """Residual R = F u - Y (n, C), x = u + lam/sigma, g = G u + nu/tau (n, 2PC)."""
        op = self.op
        Xu = op.X @ st.u
        v, w = op.halves(Xu)
        R = self.xp.sum(self.xp.reshape(v - w, (self.n, self.P, self.C)) * op._D, axis=1) - self.Y
        return R, st.u + st.lam / st.sigma, op.signed(Xu) + st.nu / st.tau

    def prox_residual(self, st: SSNALState, x):
        """``sigma (x - prox(x))`` (d, 2PC) for the group prox at ``beta / sigma``, and the
        group norms of x (2PC,)."""
        xp = self.xp
        norms = self.op.group_norms(x)
        t = self.beta / st.sigma
        shrink = xp.where(norms > t, t / xp.where(norms > t, norms, 1.0), 1.0)  # x - prox(x) = shrink * x
        return st.sigma * shrink * x, norms

    def gradient(self, st: SSNALState, R, x, g):
        """grad phi (d, 2PC) and the group norms of x."""
        lam, norms = self.prox_residual(st, x)
        return self.op.FT(R) + lam + st.tau * self.op.GT(self.xp.minimum(g, 0)), norms

    def prox_jacobians(self, st: SSNALState, x, norms):
        """B_j (2PC, d, d): (beta/||x_j||)(I - x^ x^T) where the prox shrinks, sigma I where it is 0."""
        xp = self.xp
        t = self.beta / st.sigma
        on = norms > t
        safe = xp.where(on, norms, 1.0)
        xh = (x / safe).T                                                   # (2PC, d)
        eye = xp.eye(self.d, dtype=x.dtype, device=device_of(x))
        tangential = (self.beta / safe)[:, None, None] * (eye[None] - xh[:, :, None] * xh[:, None, :])
        return xp.where(on[:, None, None], tangential, st.sigma * eye[None])

    def phi_along(self, st: SSNALState, R, x, g, du, grad):
        """phi_c(u + a du) - phi_c(u) - ARMIJO a <grad_c, du_c> for every column c and every
        candidate step a = 2^-i: (STEPS, C), and the slopes <grad_c, du_c> (C,). Quadratic in a for the data, a function of a
        quadratic for each group norm, elementwise for the cone rows (one GEMM, X du)."""
        xp, op, beta, P, C = self.xp, self.op, self.beta, self.P, self.C
        Xd = op.X @ du
        vd, wd = op.halves(Xd)
        FD = xp.sum(xp.reshape(vd - wd, (self.n, P, C)) * op._D, axis=1)
        gd = op.signed(Xd)
        a = xp.asarray([0.5**i for i in range(STEPS)], dtype=x.dtype, device=device_of(x))
        a1 = a[:, None]
        data = a1 * xp.sum(R * FD, axis=0)[None] + 0.5 * a1**2 * xp.sum(FD * FD, axis=0)[None]
        t = beta / st.sigma

        def env(sq):
            nrm = xp.sqrt(xp.maximum(sq, 0))
            return xp.where(nrm > t, beta * nrm - 0.5 * beta * t, 0.5 * st.sigma * sq)

        xx, xd, dd = xp.sum(x * x, axis=0), xp.sum(x * du, axis=0), xp.sum(du * du, axis=0)
        groups = env(xx[None] + 2 * a1 * xd[None] + a1**2 * dd[None]) - env(xx)[None]
        neg0 = xp.sum(xp.minimum(g, 0) ** 2, axis=0)
        cone = xp.sum(xp.minimum(g[None] + a[:, None, None] * gd[None], 0) ** 2, axis=1) - neg0[None]
        change = data + _group_sums(xp, groups + 0.5 * st.tau * cone, P, C)
        slope = _group_sums(xp, xp.sum(grad * du, axis=0), P, C)
        return change - ARMIJO * a1 * slope[None], slope

    def step_sizes(self, excess, scale):
        """Per column, the largest candidate step with ``excess <= rounding``; the smallest
        candidate where none is (C,)."""
        xp = self.xp
        ok = excess <= 1e-13 * scale
        first = xp.argmax(xp.astype(ok, xp.int32), axis=0)                   # 0 where none: checked below
        first = xp.where(xp.any(ok, axis=0), first, STEPS - 1)
        return xp.asarray(0.5, dtype=excess.dtype, device=device_of(excess)) ** xp.astype(first, excess.dtype)

    def phi0_scale(self, R, x, g, st):
        """A magnitude of phi per column (C,), for the rounding slack of the line search."""
        xp = self.xp
        return xp.sum(R * R, axis=0) + _group_sums(xp, self.beta * self.op.group_norms(x)
                                                   + st.tau * xp.sum(xp.minimum(g, 0) ** 2, axis=0), self.P, self.C)


def inner(prob: Problem, system, st: SSNALState, eps: float, max_steps: int, deadline=None):
    """Semismooth Newton on phi until ``max_j ||grad_j|| <= eps beta``. Returns (state, steps, converged)."""
    xp, op = prob.xp, prob.op
    last, flat = math.inf, False
    for step in range(max_steps + 1):
        R, x, g = prob.pieces(st)
        grad, norms = prob.gradient(st, R, x, g)
        worst = to_float(xp.max(op.group_norms(grad)))                        # the one host read per step
        if not math.isfinite(worst):
            return st, step, False
        if worst <= eps * prob.beta:
            return st, step, True
        if flat and worst > 0.5 * last:  # a step that moved neither phi nor its gradient: rounding
            return st, step, False
        last = worst
        if step == max_steps or (deadline is not None and time.perf_counter() > deadline):
            return st, step, False
        active = xp.astype(g < 0, x.dtype)
        on = xp.astype(norms > prob.beta / st.sigma, x.dtype)
        radial = x * (on / xp.where(norms > 0, norms, 1.0))[None, :]            # x^ of the active groups
        du = system.solve(prob.prox_jacobians(st, x, norms), active, st.tau, -grad, radial)
        excess, slope = prob.phi_along(st, R, x, g, du, grad)
        scale = prob.phi0_scale(R, x, g, st)
        flat = bool(to_float(xp.all(-slope <= FLAT * scale)))  # phi cannot fall by more than its rounding
        a = prob.step_sizes(excess, scale)                                    # (C,)
        steps = xp.reshape(xp.broadcast_to(a[None, :], (2 * prob.P, prob.C)), (2 * prob.P * prob.C,))
        st = st._replace(u=st.u + steps[None, :] * du)
    return st, max_steps, False


def update_multipliers(prob: Problem, st: SSNALState) -> SSNALState:
    """``lam = sigma (x - prox(x))``, ``nu = tau min(G u + nu / tau, 0)``."""
    _, x, g = prob.pieces(st)
    lam, _ = prob.prox_residual(st, x)
    return st._replace(lam=lam, nu=st.tau * prob.xp.minimum(g, 0))


def certify(prob: Problem, st: SSNALState) -> tuple[list[Candidate], float]:
    """The certificate at u with the groups that the prox zeroes set to 0 (the sparser
    network) and at u: both primal candidates in that order, and the better of their dual
    bounds (multipliers ``mu = -nu``)."""
    xp, op, beta, Y = prob.xp, prob.op, prob.beta, prob.Y
    mu = xp.maximum(-st.nu, 0)
    GT_mu = op.GT(mu)
    x = st.u + st.lam / st.sigma
    keep = xp.astype(op.group_norms(x) > beta / st.sigma, st.u.dtype)
    cands, bound = [], -math.inf
    for u in (st.u * keep[None, :], st.u):
        obj, viol = certificate.objective(op, u, Y, beta)
        low = to_float(certificate.dual_bound(op, u, Y, beta, mu, GT_mu))
        cands.append(Candidate(u, to_float(obj), to_float(viol), low))
        bound = max(bound, low)
    return cands, bound


def merit(c: Candidate, bound: float) -> float:
    """``certificate.merit`` of a candidate against ``bound``."""
    return certificate.merit(c.objective, bound, c.cone_violation)


def start_state(op, state, rho: float) -> SSNALState:
    """The SSNAL state from an ADMM state (``admm.ADMMState`` with its slack and dual
    weighted by ``op.cone_scale``): u, the unscaled multipliers ``rho lam`` and
    ``rho sigma_c nu``, and penalties START_FACTOR times ADMM's."""
    xp = op.xp
    sc = op.cone_scale
    return SSNALState(u=state.u, lam=rho * state.lam, nu=xp.minimum(rho * sc * state.nu, 0),
                      sigma=START_FACTOR * rho, tau=START_FACTOR * rho * sc * sc)


def run(op, Y, beta: float, start: SSNALState, tol: float, *, max_newton: int = 200, max_outer: int = 30,
        deadline: float | None = None, system=None, log=None) -> EndgameResult:
    """SSNAL from ``start`` until the best point certifies ``tol`` (``certifies``), the
    Newton budget ``max_newton`` or ``max_outer`` outer steps run out, the ``deadline``
    (``time.perf_counter()`` seconds) passes, or the gap stops closing.

    Parameters
    ----------
    op : Operators
        Any cone_scale (the endgame uses unscaled G), in the dtype the endgame should
        run in (float64).
    Y : array of shape (n, C)
        Targets, in that dtype too.
    beta : float
        Group-lasso weight.
    start : SSNALState
        Where to start (``start_state``).
    tol : float
        The certificate to reach.
    system : optional
        A Newton-system solver (``system.DenseNewton`` by default).
    log : callable, optional
        Called as ``log(best, bound, newton_steps)`` after every outer step with the best
        ``Candidate`` so far and the best bound.
    """
    t0 = time.perf_counter()
    prob = Problem(op, Y, beta)
    system = system if system is not None else DenseNewton(prob.xp, prob.op.X, prob.op.D, prob.C)
    system.reset()
    st = start
    sigma0, tau0 = st.sigma, st.tau
    eps = EPS_START
    best, bound, newton, reason, stalled = None, -math.inf, 0, "max_outer", 0
    best_gap = math.inf
    outer = 0
    for outer in range(1, max_outer + 1):
        st, steps, _ = inner(prob, system, st, eps, max_newton - newton, deadline)
        newton += steps
        st = update_multipliers(prob, st)
        cands, low = certify(prob, st)
        bound = max(bound, low)
        if not all(math.isfinite(c.objective) for c in cands) or not math.isfinite(low):
            reason = "not finite"
            break
        sparse, dense = cands  # the sparse network whenever it certifies: the same proof, fewer neurons
        cand = sparse if (certificate.certifies(sparse.objective, bound, sparse.cone_violation, tol)
                          or merit(sparse, bound) <= merit(dense, bound)) else dense
        if best is None or merit(cand, bound) < merit(best, bound) or (
                certificate.certifies(cand.objective, bound, cand.cone_violation, tol)
                and not certificate.certifies(best.objective, bound, best.cone_violation, tol)):
            best = cand
        if log is not None:
            log(best, bound, newton)
        if certificate.certifies(best.objective, bound, best.cone_violation, tol):
            reason = "certified"
            break
        gap = merit(best, bound)
        stalled = stalled + 1 if gap > 0.9 * best_gap else 0
        best_gap = min(best_gap, gap)
        if stalled >= 4 and st.sigma >= PENALTY_CAP * sigma0:  # no better point at the largest penalties
            reason = "stalled"
            break
        if newton >= max_newton:
            reason = "max_newton"
            break
        if deadline is not None and time.perf_counter() > deadline:
            reason = "time_limit"
            break
        st = st._replace(sigma=min(st.sigma * GROWTH, PENALTY_CAP * sigma0), tau=min(st.tau * GROWTH, PENALTY_CAP * tau0))
        eps = max(eps * EPS_FACTOR, EPS_FLOOR)
    return EndgameResult(best, bound, outer, newton, time.perf_counter() - t0, reason, st)
