"""Primal objective and a certified dual lower bound of the convex program in sum form.

Primal (sum form, one group per pattern, sign and output column):

    p(u) = 0.5 ||F u - Y||_F^2 + beta * sum_j ||u_j||_2   s.t.  G_j u_j >= 0.

Its Lagrange dual is

    max_{z, mu >= 0}  -0.5 ||z||^2 - <z, Y>   s.t.  ||F_j^T z - G_j^T mu_j||_2 <= beta  for all j.

From a primal point w we take ``z = F w - Y`` and ``mu = max(-rho nu, 0)`` (the
unscaled cone multipliers), scale both by ``t`` so that every group constraint
holds, and pick the ``t`` that maximises the (concave, one-dimensional) dual value
in closed form. Any such point is dual feasible, so its value is a lower bound
on the optimum: ``gap = objective - dual_bound >= 0`` certifies optimality.

ADMM offers two primal points, and ``admm.check`` keeps the larger of their
bounds. The u-iterate is the better one: the u-step's optimality condition reads
``F^T (F u - Y) = -rho (u - v + lam) - rho G^T (G u - s + nu)``, and
``rho (u - v + lam)`` restricted to group j is the v-step's subgradient of
``beta ||v_j||``, of norm at most beta; so ``F_j^T z - G_j^T mu_j`` exceeds beta
only by primal-residual terms and t tends to 1. With the sparse v the residual
``F (u - v)`` enters instead, and at small beta, where the optimum nearly
interpolates, that difference keeps t far below 1 long after the objective has
converged (Fashion-MNIST 0 vs 6, n = 1000, P = 10, beta = 1e-3, 8000 iterations:
``max_j ||F_j^T z - G_j^T mu_j|| / beta`` is 41 with v and 1.0 with u).
"""
from __future__ import annotations

#: a relative gap this far below zero is rounding, not a point that beats a valid bound
ROUNDING = 1e-12


def merit(objective: float, bound: float, violation: float) -> float:
    """How far a primal point is from certified by ``bound`` (smaller is better): the larger
    of its relative gap and its cone violation, plus 1 when the gap is negative beyond
    rounding (such a point certifies nothing, however close: any point that can certify
    comes first)."""
    rel = (objective - bound) / max(abs(objective), 1e-300)
    return max(abs(rel), violation) + (1.0 if rel < -ROUNDING else 0.0)


def certifies(objective: float, bound: float, violation: float, tol: float) -> bool:
    """The one meaning of "certified to tol": ``-ROUNDING <= (objective - bound) / |objective| <= tol``
    and relative cone violation <= tol. A point below a valid bound beats the optimum only
    by violating the cones, so a negative gap (beyond rounding) never certifies."""
    rel = (objective - bound) / max(abs(objective), 1e-300)
    return -ROUNDING <= rel <= tol and violation <= tol


def objective(op, u, Y, beta):
    """Objective of the ReLU network whose neurons are the groups of ``u``, and
    the relative violation ``||min(G u, 0)|| / ||Y||`` of the cone constraints
    (``||G u||`` replaces ``||Y||`` if Y = 0).

    The violation is measured in output units: each violated entry is a hidden
    unit's output that the ReLU clips but the convex model counts, so it moves
    the network's objective away from the convex program's by about this
    relative amount (on the test problems, by 0.7 to 1.4 times it). Relative to
    ``||G u||``, which can exceed ``||Y||`` by the number of neurons, it would
    understate that effect.

    The objective uses the true ReLU outputs, so it is the regularised training
    loss of the recovered network even if a cone constraint is slightly violated.
    Both are 0-d arrays; one GEMM ``X u`` serves both.
    """
    xp = op.xp
    Xu = op.X @ u
    relu = xp.reshape(xp.maximum(Xu, 0), (op.n, 2, op.P, op.C))
    r = xp.sum(relu[:, 0] - relu[:, 1], axis=1) - Y
    obj = 0.5 * xp.sum(r * r) + beta * xp.sum(op.group_norms(u))
    return obj, cone_violation(xp, op.signed(Xu), Y)


def cone_violation(xp, g, Y):
    """``||min(g, 0)|| / ||Y||`` (``||g||`` if Y = 0) for ``g = G u`` (n, 2PC):
    the relative cone violation that ``objective`` reports (0-d array)."""
    ynorm = xp.sqrt(xp.sum(Y * Y))
    scale = xp.where(ynorm > 0, ynorm, xp.sqrt(xp.sum(g * g)))
    return xp.sqrt(xp.sum(xp.minimum(g, 0) ** 2)) / xp.maximum(scale, xp.finfo(g.dtype).tiny)


def dual_bound(op, w, Y, beta, mu, GT_mu=None):
    """Value (0-d array) of a dual-feasible point built from ``z = F w - Y`` for a
    primal point ``w`` (d, 2PC) and
    cone multipliers ``mu >= 0`` (n, 2PC). ``GT_mu`` may pass ``G^T mu`` if the
    caller already has it.

    Rows of X that no pattern activates (all-zero rows of D) do not enter any
    dual constraint, so their dual variables take their optimal value ``-Y_i``
    exactly; only the other rows are scaled by ``t``.
    """
    xp = op.xp
    live = xp.astype(xp.max(op.D, axis=1) > 0, Y.dtype)[:, None]
    r = (op.F(w) - Y) * live
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
