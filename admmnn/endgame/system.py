"""The Newton systems of the endgame, reduced from 2 P d to P d unknowns per output column.

Per output column c the semismooth Newton matrix of ``ssnal.phi`` is

    H = F^T F + blockdiag(M_j),   M_j = B_j + tau X^T diag(a_j) X   (d x d, one per group j),

with ``B_j`` the generalised Jacobian of the group prox term and ``a_j`` the 0/1 rows
where the cone penalty is active. F maps the positive and the negative group of a
pattern to the same output with opposite signs, ``F^T F = [[Q, -Q], [-Q, Q]]`` with
``Q = [X^T D_p D_q X]_pq`` (P d x P d, the same for every column). Writing
``e = da - db`` and ``S = Mv + Mw``, the system ``H [da; db] = [ra; rb]`` becomes

    (Mv S^-1 Mw + Q) e = Mw S^-1 ra - Mv S^-1 rb,
    db = S^-1 (ra + rb - Mv e),   da = db + e,

where ``Mv S^-1 Mw = Mv - Mv S^-1 Mv`` (the parallel sum, symmetric PSD) is block
diagonal. ``S`` is solved in (P C) batched d x d blocks, the reduced matrix in C
batched Cholesky factorisations of size P d. Nothing of size (n, d, P) is formed: the
per-group Gram matrices ``X^T diag(w) X`` for many weight vectors w are one GEMM of the
weights with the row-wise Kronecker square of X, taken over blocks of rows.
"""
from __future__ import annotations

from .._backend import cho_solve, device_of

#: bytes of the row-wise Kronecker square of X held at once (``weighted_grams``)
ROW_BLOCK_BYTES = 64 * 2**20
#: relative ridge added to S and to the reduced matrix (a Newton direction may be inexact)
RIDGE = 1e-11


def weighted_grams(xp, X, W):
    """``[X^T diag(W[:, j]) X]_j`` for X (n, d) and weights W (n, k) -> (k, d, d).

    One GEMM ``W_b^T (X_b (x) X_b)`` per block of rows b (the row-wise Kronecker square of
    the block, (rows, d^2), holds at most ``ROW_BLOCK_BYTES``); no (n, d, k) temporary."""
    n, d = X.shape
    k = W.shape[1]
    rows = max(1, min(n, ROW_BLOCK_BYTES // (8 * d * d)))
    out = None
    for i in range(0, n, rows):
        Xb = X[i:i + rows]
        Zb = xp.reshape(Xb[:, :, None] * Xb[:, None, :], (Xb.shape[0], d * d))
        part = W[i:i + rows].T @ Zb
        out = part if out is None else out + part
    return xp.reshape(out, (k, d, d))


def pattern_gram(xp, X, D):
    """``Q = [X^T diag(D_p D_q) X]_pq`` as a (P d, P d) matrix (rows ordered (p, a))."""
    n, d = X.shape
    P = D.shape[1]
    pairs = xp.reshape(D[:, :, None] * D[:, None, :], (n, P * P))
    blocks = xp.reshape(weighted_grams(xp, X, pairs), (P, P, d, d))
    return xp.reshape(xp.permute_dims(blocks, (0, 2, 1, 3)), (P * d, P * d))


def _eye(xp, m, ref):
    return xp.eye(m, dtype=ref.dtype, device=device_of(ref))


class ReducedNewton:
    """Solves the Newton system of ``ssnal`` densely in the reduced P d unknowns.

    X (n, d), D (n, P), C outputs; ``Q`` (P d, P d) is formed once (P^2 n d^2 flops).
    A solve costs 2 P C n d^2 (the cone curvature) + C (P d)^3 / 3 (the factorisations).
    """

    name = "reduced-dense"

    def __init__(self, xp, X, D, C: int):
        self.xp, self.X, self.D, self.C = xp, X, D, int(C)
        self.n, self.d = X.shape
        self.P = D.shape[1]
        self.Q = pattern_gram(xp, X, D)

    @staticmethod
    def bytes_needed(n: int, d: int, P: int, C: int, itemsize: int = 8) -> int:
        """Memory of Q and the C reduced matrices and their factors."""
        return itemsize * (2 * C + 1) * (P * d) ** 2

    def solve(self, B, active, tau: float, r):
        """Newton direction (d, 2PC) for ``r = -grad`` (d, 2PC).

        Parameters
        ----------
        B : array of shape (2PC, d, d)
            Prox Jacobians of the groups.
        active : array of shape (n, 2PC)
            0/1 rows of the cone penalty.
        tau : float
            Its weight.
        r : array of shape (d, 2PC)
            The right-hand side, minus the gradient.
        """
        xp, d, P, C = self.xp, self.d, self.P, self.C
        M = B + tau * weighted_grams(xp, self.X, active)               # (2PC, d, d)
        M = xp.reshape(M, (2, P, C, d, d))
        Mv, Mw = M[0], M[1]                                            # (P, C, d, d)
        S = Mv + Mw
        scale = xp.max(xp.linalg.diagonal(S), axis=-1)[..., None, None]
        S = S + RIDGE * scale * _eye(xp, d, S)
        r4 = xp.reshape(r, (d, 2, P, C))
        ra = xp.permute_dims(r4[:, 0], (1, 2, 0))[..., None]           # (P, C, d, 1)
        rb = xp.permute_dims(r4[:, 1], (1, 2, 0))[..., None]
        sol = xp.linalg.solve(S, xp.concat([Mv, ra, rb], axis=-1))     # S^-1 [Mv, ra, rb]
        SinvMv, Sra, Srb = sol[..., :d], sol[..., d:d + 1], sol[..., d + 1:]
        par = Mv - Mv @ SinvMv
        par = 0.5 * (par + xp.matrix_transpose(par))                   # Mv S^-1 Mw, symmetric
        rhs = Mw @ Sra - Mv @ Srb                                      # (P, C, d, 1)
        # K_c = Q + blockdiag_p(par[p, c]) for every column at once: (C, P, d, P, d)
        eyeP = _eye(xp, P, S)
        K = self.Q[None] + xp.reshape(xp.permute_dims(par, (1, 0, 2, 3))[:, :, :, None, :]
                                      * eyeP[None, :, None, :, None], (C, P * d, P * d))
        Kscale = xp.max(xp.linalg.diagonal(K), axis=-1)[..., None, None]
        K = K + RIDGE * Kscale * _eye(xp, P * d, K)
        L = xp.linalg.cholesky(K)
        rhs_c = xp.reshape(xp.permute_dims(rhs[..., 0], (1, 0, 2)), (C, P * d, 1))
        e = cho_solve(L, rhs_c)                                        # (C, P d, 1)
        e = xp.permute_dims(xp.reshape(e, (C, P, d)), (1, 0, 2))[..., None]   # (P, C, d, 1)
        db = Sra + Srb - SinvMv @ e
        da = db + e
        out = xp.stack([da[..., 0], db[..., 0]], axis=0)               # (2, P, C, d)
        return xp.reshape(xp.permute_dims(out, (3, 0, 1, 2)), (d, 2 * P * C))


#: polish=None runs the endgame when one Newton step is predicted to cost at most this many flops
MAX_DEFAULT_FLOPS = 3e11


def newton_flops(n: int, d: int, P: int, C: int) -> float:
    """Flops of one reduced Newton step: cone curvature 2 P C n d^2, C factorisations (P d)^3 / 3."""
    return 2.0 * P * C * n * d * d + C * (P * d) ** 3 / 3.0


def available(n: int, d: int, P: int, C: int, budget: float) -> str | None:
    """Why the endgame cannot run by default at this size with ``budget`` bytes (None: it can)."""
    need = ReducedNewton.bytes_needed(n, d, P, C)
    if need > budget:
        return f"its reduced Newton system needs {need / 2**30:.2f} GiB, over the budget of {budget / 2**30:.2f} GiB"
    if newton_flops(n, d, P, C) > MAX_DEFAULT_FLOPS:
        return f"one Newton step costs {newton_flops(n, d, P, C):.1e} flops (limit {MAX_DEFAULT_FLOPS:.0e})"
    return None


def system_for(op, C: int) -> ReducedNewton:
    """The Newton-system solver for operators ``op`` (float64) and C outputs."""
    return ReducedNewton(op.xp, op.X, op.D, C)
