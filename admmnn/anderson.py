"""Safeguarded Anderson acceleration (type II) of the ADMM fixed-point map.

One ADMM iteration is a map ``x -> T(x)`` on ``x = (v, s, lam, nu)`` (u is
recomputed from x by the u-step), and the solution is its fixed point. Anderson
acceleration (Walker & Ni 2011; SCS 3, Zhang et al. 2020 for A2DR) extrapolates
from the last ``m`` pairs ``(x_i, T(x_i))``: with ``g = x - T(x)`` and the
differences ``dG``, ``dF`` of consecutive residuals and map values,

    gamma = argmin || g_k - dG gamma ||   (m unknowns, a regularised m x m solve)
    x_{k+1} = T(x_k) - dF gamma.

Safeguard: the extrapolated point is kept only if the residual of the next
iteration, ``||x - T(x)||`` at that point, is at most ``safeguard`` times the
residual of the point it was extrapolated from. Otherwise the step is rejected:
the iteration goes on from the plain ADMM step ``T(x_k)`` of that base point
(which was saved), so a rejection costs one map evaluation and never lets the
residual grow. On a penalty change the map changes, so ``reset`` drops the memory.

Pure ``init``/``update`` on an explicit ``AndersonState``, no host reads: under
JAX the accept/reject decision is an ``xp.where``, so the whole update compiles.
"""
from __future__ import annotations

from typing import NamedTuple

from ._backend import device_of
from .admm import ADMMState

#: the parts of the ADMM state the map acts on (u and G u are recomputed from them)
FIELDS = ("v", "s", "lam", "nu")


class AndersonState(NamedTuple):
    """Memory of the accelerator. ``dF``, ``dG``: per field of ``FIELDS``, an
    (m, *shape) array of the last m differences of map values and residuals
    (oldest first); ``f_prev``, ``g_prev``: the last map value and residual;
    ``r_prev``: ``||g_prev||``; ``count``: how many of the m columns hold data;
    ``extrapolated``: the point just mapped was an extrapolation (1.0) or a plain
    step (0.0); ``accepted``, ``rejected``: counts of extrapolations kept and
    refused. Scalars are 0-d arrays."""

    dF: tuple
    dG: tuple
    f_prev: tuple
    g_prev: tuple
    r_prev: object
    count: object
    extrapolated: object
    accepted: object
    rejected: object


def _parts(st: ADMMState) -> tuple:
    return tuple(getattr(st, f) for f in FIELDS)


def _dot(xp, a: tuple, b: tuple):
    return sum(xp.sum(x * y) for x, y in zip(a, b))


def init(xp, st: ADMMState, memory: int) -> AndersonState:
    """Empty memory of ``memory`` columns for iterates shaped like ``st``."""
    parts = _parts(st)
    zero = xp.zeros((), dtype=st.v.dtype)
    stacks = tuple(xp.zeros((memory,) + tuple(p.shape), dtype=p.dtype) for p in parts)
    return AndersonState(stacks, stacks, parts, parts, zero, zero, zero, zero, zero)


def reset(aa: AndersonState) -> AndersonState:
    """Forget the memory (after a change of the map, e.g. of the penalty)."""
    zero = aa.count * 0
    return aa._replace(count=zero, extrapolated=zero)


def update(xp, aa: AndersonState, x: ADMMState, fx: ADMMState, safeguard: float = 1.0, regularization: float = 1e-10):
    """One accelerated step: ``x`` is the point the map was applied to and ``fx = T(x)``.

    Returns ``(next_point, aa)``: the state to apply the map to next (u, G u
    taken from ``fx``: the warm start of the next u-step) and the new memory.
    """
    f = _parts(fx)
    g = tuple(a - b for a, b in zip(_parts(x), f))
    r = xp.sqrt(_dot(xp, g, g))
    m = aa.dF[0].shape[0]
    one = xp.ones((), dtype=r.dtype)
    # safeguard: an extrapolated point whose residual grew is refused; go on from
    # the plain step of the base point instead, memory kept
    reject = (aa.extrapolated > 0) & (r > safeguard * aa.r_prev)
    has_prev = aa.count > 0
    # new difference column (only meaningful when there is a previous pair)
    dg = tuple(a - b for a, b in zip(g, aa.g_prev))
    df = tuple(a - b for a, b in zip(f, aa.f_prev))
    dG = tuple(xp.concat([S[1:], c[None]], axis=0) for S, c in zip(aa.dG, dg))
    dF = tuple(xp.concat([S[1:], c[None]], axis=0) for S, c in zip(aa.dF, df))
    # count = pairs seen since the last reset, capped at m + 1 (m difference columns)
    count = xp.where(has_prev, xp.minimum(aa.count + 1, (m + 1) * one), one)
    # least squares  min || g - dG gamma ||  on the last `count` columns
    flat = [xp.reshape(S, (m, -1)) for S in dG]
    M = sum(Sf @ Sf.T for Sf in flat)
    rhs = sum(Sf @ xp.reshape(gi, (-1,)) for Sf, gi in zip(flat, g))
    dev = device_of(r)
    cols = xp.arange(m, dtype=r.dtype, device=dev)
    valid = (cols >= m - (count - 1)) & has_prev  # (m,): the columns that hold a pair
    vf = xp.astype(valid, r.dtype)
    scale = xp.max(vf * sum(xp.sum(Sf * Sf, axis=1) for Sf in flat))
    eye = xp.eye(m, dtype=r.dtype, device=dev)
    M = vf[:, None] * M * vf[None, :] + eye * (regularization * scale + xp.finfo(r.dtype).tiny) + eye * (1 - vf)
    coef = xp.linalg.solve(M, (rhs * vf)[:, None])[:, 0] * vf
    extrap = tuple(fi - xp.reshape(xp.reshape(S, (m, -1)).T @ coef, fi.shape) for fi, S in zip(f, dF))
    finite = xp.all(xp.isfinite(coef))
    use = has_prev & finite
    nxt = tuple(xp.where(use, e, fi) for e, fi in zip(extrap, f))

    # rejected: restart from the saved plain step, memory and base untouched
    nxt = tuple(xp.where(reject, fp, a) for fp, a in zip(aa.f_prev, nxt))
    keep = lambda new, old: xp.where(reject, old, new)  # noqa: E731
    new = AndersonState(
        dF=tuple(keep(a, b) for a, b in zip(dF, aa.dF)),
        dG=tuple(keep(a, b) for a, b in zip(dG, aa.dG)),
        f_prev=tuple(keep(a, b) for a, b in zip(f, aa.f_prev)),
        g_prev=tuple(keep(a, b) for a, b in zip(g, aa.g_prev)),
        r_prev=keep(r, aa.r_prev),
        count=keep(count, aa.count),
        extrapolated=xp.astype(use & ~reject, r.dtype),
        accepted=aa.accepted + xp.astype((aa.extrapolated > 0) & ~reject, r.dtype),
        rejected=aa.rejected + xp.astype(reject, r.dtype),
    )
    point = fx._replace(**dict(zip(FIELDS, nxt)))
    return point, new
