"""The ADMM iteration of Bai, Gautam & Sojoudi (2022), Algorithm 1.

Splitting:              min 0.5||F u - Y||^2 + beta ||v||_{2,1} + I_{>=0}(s)
                        s.t.  u = v,  G u = s,
with scaled duals ``lam`` (for u = v) and ``nu`` (for G u = s):

    u   <- A^{-1} (F^T Y / rho + v - lam + G^T (s - nu))      (u-step solver)
    v   <- group soft-threshold(u_hat + lam, beta / rho)
    s   <- max(Gu_hat + nu, 0)
    lam <- lam + gamma (u_hat - v);   nu <- nu + gamma (Gu_hat - s)

where ``u_hat = alpha u + (1 - alpha) v`` and ``Gu_hat = alpha G u + (1 - alpha) s``
(v and s from before the step) are the over-relaxed points (alpha = 1: plain ADMM).
The second penalty ``rho_2`` of the constraint G u = s enters through the
operators' ``cone_scale`` (``rho_2 = cone_scale^2 rho``; see ``operators``).

Every update is a pure function of an explicit ``ADMMState``; nothing is
mutated, so the same code can be traced and jitted by JAX.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from . import certificate


class ADMMState(NamedTuple):
    """Iterates. u, v, lam: (d, 2PC); s, nu, Gu: (n, 2PC). Duals are scaled by 1/rho."""

    u: object
    v: object
    s: object
    lam: object
    nu: object
    Gu: object


def init_state(op) -> ADMMState:
    """All-zero starting point."""
    zu, zs = op.zeros_u(), op.zeros_s()
    return ADMMState(zu, zu, zs, zu, zs, zs)


def u_rhs(op, FTY, rho, st: ADMMState):
    """The u-step's right-hand side ``F^T Y / rho + v - lam + G^T (s - nu)`` (d, 2PC)."""
    return FTY / rho + st.v - st.lam + op.GT(st.s - st.nu)


def u_update(op, usolver, FTY, st: ADMMState, k: int, rhs=u_rhs):
    """Solve ``A u = u_rhs(...)`` with the u-step solver (``rhs``: ``u_rhs``, or its
    compiled form). Returns ``(state, aux)``, aux the solver's diagnostics (see ``ustep.base``)."""
    u, aux = usolver.step(rhs(op, FTY, usolver.rho, st), st.u, k)
    return st._replace(u=u), aux


def v_update(op, st: ADMMState, beta: float, rho: float, alpha: float = 1.0) -> ADMMState:
    """Group soft-threshold of ``u_hat + lam`` at ``beta / rho`` (one group per column),
    with the over-relaxed ``u_hat = alpha u + (1 - alpha) v``."""
    xp = op.xp
    x = relaxed(st.u, st.v, alpha) + st.lam
    norms = op.group_norms(x)
    thr = beta / rho
    # 0 where norms <= thr (no division there: thr / tiny would overflow and warn)
    scale = xp.where(norms > thr, 1 - thr / xp.where(norms > thr, norms, 1), 0)
    return st._replace(v=x * scale)


def s_update(op, st: ADMMState, alpha: float = 1.0) -> ADMMState:
    """Project ``(G u)_hat + nu`` onto the non-negative orthant, with the over-relaxed
    ``(G u)_hat = alpha G u + (1 - alpha) s``."""
    Gu = op.G(st.u)
    return st._replace(Gu=Gu, s=op.xp.maximum(relaxed(Gu, st.s, alpha) + st.nu, 0))


def dual_update(before: ADMMState, st: ADMMState, gamma: float, alpha: float = 1.0) -> ADMMState:
    """Dual ascent with step ``gamma`` on both constraints, at the relaxed points;
    ``before`` holds the v and s that entered this iteration."""
    return st._replace(lam=st.lam + gamma * (relaxed(st.u, before.v, alpha) - st.v),
                       nu=st.nu + gamma * (relaxed(st.Gu, before.s, alpha) - st.s))


def relaxed(new, old, alpha: float):
    """Over-relaxation ``alpha new + (1 - alpha) old`` (Eckstein & Bertsekas; Boyd et al. 3.4.3)."""
    if isinstance(alpha, (int, float)) and alpha == 1:  # a Python 1 (not a traced value): skip the arithmetic
        return new
    return alpha * new + (1 - alpha) * old


PHASES = ("u", "v", "s", "dual")


def step_aux(op, usolver, FTY, beta, gamma, st: ADMMState, k, alpha: float = 1.0):
    """One ADMM iteration (all four phases): Algorithm 1 with over-relaxation ``alpha``.
    Returns ``(state, aux)``, aux the u-step's diagnostics (pure: it may be compiled)."""
    before = st
    st, aux = u_update(op, usolver, FTY, st, k)
    st = v_update(op, st, beta, usolver.rho, alpha)
    st = s_update(op, st, alpha)
    return dual_update(before, st, gamma, alpha), aux


def step(op, usolver, FTY, beta, gamma, st: ADMMState, k: int, alpha: float = 1.0) -> ADMMState:
    """``step_aux`` run eagerly, its diagnostics filed into ``usolver.info``."""
    st, aux = step_aux(op, usolver, FTY, beta, gamma, st, k, alpha)
    usolver.record(aux)
    return st


def scale_duals(st: ADMMState, factor: float) -> ADMMState:
    """Rescale the scaled duals when rho is multiplied by ``1 / factor``."""
    return st._replace(lam=st.lam * factor, nu=st.nu * factor)


def rescale_cone(st: ADMMState, factor: float) -> ADMMState:
    """The state for a cone constraint weighted ``factor`` times more (see
    ``operators``): the slack and ``G u`` scale by ``factor``, the scaled dual
    ``nu`` (whose unscaled multiplier is ``rho * factor * nu``) by ``1 / factor``."""
    if factor == 1.0:
        return st
    return st._replace(s=st.s * factor, Gu=st.Gu * factor, nu=st.nu / factor)


def check(op, Y, beta, rho, st: ADMMState, prev: ADMMState, eps_abs, eps_rel):
    """Residuals (Boyd et al. §3.3) and the certificate at ``st``.

    ``prev`` is the state one iteration earlier (for the dual residual).
    Returns a dict of 0-d arrays; nothing is read back to the host here.
    """
    xp = op.xp
    mu = xp.maximum(-rho * st.nu, 0)
    GT_ds, GT_nu, GT_mu = op.GT_many(st.s - prev.s, st.nu, mu)

    def norm(*arrays):
        return xp.sqrt(sum(xp.sum(a * a) for a in arrays))

    r_pri = norm(st.u - st.v, st.Gu - st.s)
    r_dual = rho * norm(st.v - prev.v + GT_ds)
    n_pri = st.u.shape[0] * st.u.shape[1] + (st.s.shape[0] - op.n_pad) * st.s.shape[1]  # padded rows are 0
    eps_pri = math.sqrt(n_pri) * eps_abs + eps_rel * xp.maximum(norm(st.u, st.Gu), norm(st.v, st.s))
    eps_dual = math.sqrt(st.u.shape[0] * st.u.shape[1]) * eps_abs + eps_rel * rho * norm(st.lam + GT_nu)
    obj, viol = certificate.objective(op, st.v, Y, beta)
    # two valid bounds, from z = F v - Y and z = F u - Y: keep the better (see certificate)
    lower = xp.maximum(certificate.dual_bound(op, st.v, Y, beta, mu, GT_mu),
                       certificate.dual_bound(op, st.u, Y, beta, mu, GT_mu))
    return {
        "objective": obj,
        "cone_violation": viol,
        "dual_bound": lower,
        "r_pri": r_pri,
        "r_dual": r_dual,
        "eps_pri": eps_pri,
        "eps_dual": eps_dual,
    }
