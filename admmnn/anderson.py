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
    """Memory of the accelerator, on the point flattened to one vector of length N
    (``FIELDS`` raveled and concatenated). ``dF``, ``dG``: (m, N), the last m
    differences of map values and residuals (oldest first); ``f_prev``, ``g_prev``:
    (N,), the last map value and residual; ``r_prev``: ``||g_prev||``; ``count``:
    pairs seen since the last reset, capped at m + 1 (so ``count - 1`` columns hold
    data); ``extrapolated``: the point just mapped was an extrapolation (1) or a
    plain step (0); ``accepted``, ``rejected``: counts of extrapolations kept and
    refused. Scalars are 0-d arrays of the iterates' dtype."""

    dF: object
    dG: object
    f_prev: object
    g_prev: object
    r_prev: object
    count: object
    extrapolated: object
    accepted: object
    rejected: object


def pack(xp, st: ADMMState):
    """The fields of ``FIELDS`` raveled into one vector (N,)."""
    return xp.concat([xp.reshape(getattr(st, f), (-1,)) for f in FIELDS])


def unpack(xp, flat, like: ADMMState) -> dict:
    """Inverse of ``pack``: the fields, shaped like those of ``like``."""
    out, i = {}, 0
    for f in FIELDS:
        shape = tuple(getattr(like, f).shape)
        size = 1
        for dim in shape:
            size *= dim
        out[f] = xp.reshape(flat[i:i + size], shape)
        i += size
    return out


def init(xp, st: ADMMState, memory: int) -> AndersonState:
    """Empty memory of ``memory`` columns for iterates shaped like ``st``."""
    flat = pack(xp, st)
    zero = xp.zeros((), dtype=flat.dtype, device=device_of(flat, replicated=True))
    stack = xp.zeros((memory, flat.shape[0]), dtype=flat.dtype, device=device_of(flat, replicated=True))
    return AndersonState(stack, stack, flat, flat, zero, zero, zero, zero, zero)


def reset(aa: AndersonState) -> AndersonState:
    """Forget the memory (after a change of the map, e.g. of the penalty)."""
    zero = aa.count * 0
    return aa._replace(count=zero, extrapolated=zero)


def update(xp, aa: AndersonState, x: ADMMState, fx: ADMMState, safeguard: float = 1.0, regularization: float = 1e-10,
           max_step: float = 1e3):
    """One accelerated step: ``x`` is the point the map was applied to and ``fx = T(x)``.

    An extrapolation step longer than ``max_step`` times the residual ``||x - T(x)||``
    is not taken. Returns ``(next_point, aa)``: the state to apply the map to next (u, G u
    taken from ``fx``: the warm start of the next u-step) and the new memory.
    """
    f = pack(xp, fx)
    g = pack(xp, x) - f
    r = xp.sqrt(xp.sum(g * g))
    m = aa.dF.shape[0]
    one = xp.ones((), dtype=r.dtype, device=device_of(r))
    # safeguard: an extrapolated point whose residual grew is refused; go on from
    # the plain step of its base point instead, memory kept
    reject = (aa.extrapolated > 0) & (r > safeguard * aa.r_prev)
    has_prev = aa.count > 0
    dG = xp.concat([aa.dG[1:], (g - aa.g_prev)[None]], axis=0)
    dF = xp.concat([aa.dF[1:], (f - aa.f_prev)[None]], axis=0)
    count = xp.where(has_prev, xp.minimum(aa.count + 1, (m + 1) * one), one)
    # least squares  min || g - dG gamma ||  on the columns that hold data
    cols = xp.arange(m, dtype=r.dtype, device=device_of(r))
    vf = xp.astype((cols >= m - (count - 1)) & has_prev, r.dtype)  # (m,)
    M = dG @ dG.T
    eye = xp.eye(m, dtype=r.dtype, device=device_of(r))
    scale = xp.max(vf * xp.sum(dG * dG, axis=1))
    M = vf[:, None] * M * vf[None, :] + eye * (regularization * scale + xp.finfo(r.dtype).tiny + (1 - vf))
    coef = xp.linalg.solve(M, ((dG @ g) * vf)[:, None])[:, 0] * vf
    step = dF.T @ coef
    # an extrapolation far longer than the residual it corrects is not trusted (early,
    # badly scaled iterates): the plain step is taken instead
    use = has_prev & xp.all(xp.isfinite(coef)) & (xp.sqrt(xp.sum(step * step)) <= max_step * r)
    nxt = xp.where(use, f - step, f)
    # rejected: restart from the saved plain step, memory and base untouched
    nxt = xp.where(reject, aa.f_prev, nxt)
    new = AndersonState(
        dF=xp.where(reject, aa.dF, dF),
        dG=xp.where(reject, aa.dG, dG),
        f_prev=xp.where(reject, aa.f_prev, f),
        g_prev=xp.where(reject, aa.g_prev, g),
        r_prev=xp.where(reject, aa.r_prev, r),
        count=xp.where(reject, aa.count, count),
        extrapolated=xp.astype(use & ~reject, r.dtype),
        accepted=aa.accepted + xp.astype((aa.extrapolated > 0) & ~reject, r.dtype),
        rejected=aa.rejected + xp.astype(reject, r.dtype),
    )
    return fx._replace(**unpack(xp, nxt, fx)), new
