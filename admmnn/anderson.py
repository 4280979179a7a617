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

from ._backend import as_index, device_of, set_index
from .admm import ADMMState

#: the parts of the ADMM state the map acts on (u and G u are recomputed from them)
FIELDS = ("v", "s", "lam", "nu")


class AndersonState(NamedTuple):
    """Memory of the accelerator, on the point flattened to one vector of length N
    (``FIELDS`` raveled and concatenated). ``dF``, ``dG``: (m, N), a ring of the last m
    differences of map values and residuals (slot ``head`` is written next; the order of
    the slots does not change the extrapolation); ``gram``: (m, m), ``dG dG^T``, kept up to
    date one row at a time; ``f_prev``, ``g_prev``: (N,), the last map value and residual;
    ``r_prev``: ``||g_prev||``; ``count``: pairs seen since the last reset, capped at m + 1
    (so slots ``0 .. count - 2`` hold data); ``extrapolated``: the point just mapped was an
    extrapolation (1) or a plain step (0); ``accepted``, ``rejected``: counts of
    extrapolations kept and refused. Scalars are 0-d arrays of the iterates' dtype.

    ``update`` writes one slot of ``dF``, ``dG`` and one row and column of ``gram`` in place
    on NumPy and torch (``copy`` before keeping an older memory), functionally under JAX."""

    dF: object
    dG: object
    f_prev: object
    g_prev: object
    r_prev: object
    count: object
    extrapolated: object
    accepted: object
    rejected: object
    head: object = None
    gram: object = None


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
    dev = device_of(flat, replicated=True)
    zero = xp.zeros((), dtype=flat.dtype, device=dev)

    def stack():
        return xp.zeros((memory, flat.shape[0]), dtype=flat.dtype, device=dev)

    gram = xp.zeros((memory, memory), dtype=flat.dtype, device=dev)
    return AndersonState(stack(), stack(), flat, flat, zero, zero, zero, zero, zero, zero, gram)


def reset(aa: AndersonState) -> AndersonState:
    """Forget the memory (after a change of the map, e.g. of the penalty)."""
    zero = aa.count * 0
    return aa._replace(count=zero, extrapolated=zero, head=zero)


def copy(xp, aa: AndersonState | None) -> AndersonState | None:
    """A copy whose arrays later in-place updates do not touch (for a checkpoint)."""
    if aa is None:
        return None
    return aa._replace(dF=xp.asarray(aa.dF, copy=True), dG=xp.asarray(aa.dG, copy=True),
                       gram=xp.asarray(aa.gram, copy=True))


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
    write = has_prev & ~reject
    # the new differences go to slot ``head`` of the ring (kept as they were on a refusal)
    slot = as_index(aa.head)
    dG = set_index(aa.dG, slot, xp.where(write, g - aa.g_prev, aa.dG[slot]))
    dF = set_index(aa.dF, slot, xp.where(write, f - aa.f_prev, aa.dF[slot]))
    row = dG @ dG[slot]                                            # (m,): the slot's row of dG dG^T
    gram = set_index(set_index(aa.gram, slot, row), (slice(None), slot), row)
    count = xp.where(reject, aa.count, xp.where(has_prev, xp.minimum(aa.count + 1, (m + 1) * one), one))
    head = xp.where(write, (aa.head + 1) % m, aa.head)
    # least squares  min || g - dG gamma ||  on the slots that hold data
    cols = xp.arange(m, dtype=r.dtype, device=device_of(r))
    vf = xp.astype((cols < count - 1) & (count > 1), r.dtype)  # (m,)
    eye = xp.eye(m, dtype=r.dtype, device=device_of(r))
    scale = xp.max(vf * xp.linalg.diagonal(gram))
    M = vf[:, None] * gram * vf[None, :] + eye * (regularization * scale + xp.finfo(r.dtype).tiny + (1 - vf))
    coef = xp.linalg.solve(M, ((dG @ g) * vf)[:, None])[:, 0] * vf
    step = coef @ dF
    # an extrapolation far longer than the residual it corrects is not trusted (early,
    # badly scaled iterates): the plain step is taken instead
    use = has_prev & xp.all(xp.isfinite(coef)) & (xp.sqrt(xp.sum(step * step)) <= max_step * r)
    nxt = xp.where(use, f - step, f)
    # rejected: restart from the saved plain step, memory and base untouched
    nxt = xp.where(reject, aa.f_prev, nxt)
    new = AndersonState(
        dF=dF,
        dG=dG,
        f_prev=xp.where(reject, aa.f_prev, f),
        g_prev=xp.where(reject, aa.g_prev, g),
        r_prev=xp.where(reject, aa.r_prev, r),
        count=count,
        extrapolated=xp.astype(use & ~reject, r.dtype),
        accepted=aa.accepted + xp.astype((aa.extrapolated > 0) & ~reject, r.dtype),
        rejected=aa.rejected + xp.astype(reject, r.dtype),
        head=head,
        gram=gram,
    )
    return fx._replace(**unpack(xp, nxt, fx)), new
