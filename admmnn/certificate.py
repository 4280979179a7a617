"""Primal objective and a certified dual lower bound (DESIGN §8).

Primal (sum form, one group per pattern, sign and output column):

    p(u) = 0.5 ||F u - Y||_F^2 + beta * sum_j ||u_j||_2   s.t.  G_j u_j >= 0.

Its Lagrange dual is

    max_{z, mu >= 0}  -0.5 ||z||^2 - <z, Y>   s.t.  ||F_j^T z - G_j^T mu_j||_2 <= beta  for all j.

From the ADMM iterate we take ``z = F v - Y`` and ``mu = max(-rho nu, 0)`` (the
unscaled cone multipliers), scale both by ``t`` so that every group constraint
holds, and pick the ``t`` that maximises the (concave, one-dimensional) dual value
in closed form. Any such point is dual feasible, so its value is a lower bound
on the optimum: ``gap = objective - dual_bound >= 0`` certifies optimality.
"""
from __future__ import annotations


def objective(op, u, Y, beta):
    """Objective of the ReLU network whose neurons are the groups of ``u``, and
    the relative violation ``||min(G u, 0)|| / max(||G u||, ||Y||)`` of the cone
    constraints (the ``||Y||`` keeps it meaningful when u is nearly zero).

    The objective uses the true ReLU outputs, so it is the regularised training
    loss of the recovered network even if a cone constraint is slightly violated.
    Both are 0-d arrays; one GEMM ``X u`` serves both.
    """
    xp = op.xp
    Xu = op.X @ u
    relu = xp.reshape(xp.maximum(Xu, 0), (op.n, 2, op.P, op.C))
    r = xp.sum(relu[:, 0] - relu[:, 1], axis=1) - Y
    obj = 0.5 * xp.sum(r * r) + beta * xp.sum(op.group_norms(u))
    g = op.signed(Xu)
    scale = xp.maximum(xp.sqrt(xp.sum(g * g)), xp.sqrt(xp.sum(Y * Y)))
    viol = xp.sqrt(xp.sum(xp.minimum(g, 0) ** 2)) / xp.maximum(scale, xp.finfo(g.dtype).tiny)
    return obj, viol


def dual_bound(op, v, Y, beta, mu, GT_mu=None):
    """Value (0-d array) of a dual-feasible point built from ``v`` (d, 2PC) and
    cone multipliers ``mu >= 0`` (n, 2PC). ``GT_mu`` may pass ``G^T mu`` if the
    caller already has it.

    Rows of X that no pattern activates (all-zero rows of D) do not enter any
    dual constraint, so their dual variables take their optimal value ``-Y_i``
    exactly; only the other rows are scaled by ``t``.
    """
    xp = op.xp
    live = xp.astype(xp.max(op.D, axis=1) > 0, Y.dtype)[:, None]
    r = (op.F(v) - Y) * live
    dead = 0.5 * xp.sum(((1 - live) * Y) ** 2)
    if GT_mu is None:
        GT_mu = op.GT(mu)
    q = op.FT(r) - GT_mu
    worst = xp.max(op.group_norms(q))
    rr = xp.sum(r * r)
    ry = xp.sum(r * Y)
    tiny = xp.finfo(r.dtype).tiny
    pos = worst > tiny  # q = 0: any t is feasible (and beta / tiny would overflow and warn)
    t_max = xp.where(pos, beta / xp.where(pos, worst, 1.0), xp.inf)
    t = xp.clip(-ry / xp.maximum(rr, tiny), 0.0, t_max)
    return dead - 0.5 * t * t * rr - t * ry
