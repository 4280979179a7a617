"""The Newton systems of the endgame, reduced from 2 P d to P d unknowns per output column.

Per output column c the semismooth Newton matrix of ``ssnal.phi`` is

    H = F^T F + blockdiag(M_j),   M_j = B_j + tau X^T diag(a_j) X   (d x d, one per group j),

with ``B_j`` the generalised Jacobian of the group prox term and ``a_j`` the 0/1 rows
where the cone penalty is active. F maps the positive and the negative group of a
pattern to the same output with opposite signs, ``F^T F = [[Q, -Q], [-Q, Q]]`` with
``Q = XD^T XD``, ``XD = [D_1 X .. D_P X]`` (never formed). Writing ``e = da - db`` and
``S = Mv + Mw``, the system ``H [da; db] = [ra; rb]`` becomes

    K e = (W + Q) e = Mw S^-1 ra - Mv S^-1 rb,     W = blockdiag_p(Mv S^-1 Mw),
    db = S^-1 (ra + rb - Mv e),   da = db + e,

where ``Mv S^-1 Mw = Mv - Mv S^-1 Mv`` (the parallel sum, symmetric PSD) is block
diagonal. ``S`` is solved in (P C) batched d x d blocks. The reduced system ``K e = g``
is solved by one of:

* ``DenseNewton``: Q (P d x P d) formed once, C batched Cholesky factorisations of K;
  (P d)^3 / 3 flops per column, (P d)^2 memory. The default while P d is moderate.
* ``WoodburyNewton``: conjugate gradients on K (products with Q through X, two GEMMs),
  preconditioned by the exact inverse of ``W~ + Q`` through the n x n capacitance
  ``I + sum_p D_p X W~_p^-1 X^T D_p`` (Woodbury), where ``W~`` adds to each active
  group its data curvature ``||D_p X x^||^2`` along its radial direction x^ (the one
  direction in which the prox Jacobian has no curvature). ``K - (W~ + Q)`` has rank at most
  the number of active groups, so CG needs few iterations. P (n d^2 + n^2 d) + n^3 / 3
  flops per column, n^2 memory: for n < P d.

The per-group Gram matrices ``X^T diag(w) X`` of the cone term are one GEMM of the
weights with the row-wise Kronecker square of X (cached when it fits), updated from the
rows whose activity changed since the last step. Nothing of size (n, d, P) is formed.
"""
from __future__ import annotations

import math

from .._backend import add_diagonal_blocks, cho_solve, cholesky, cholesky_or_nan, device_of, to_float

#: bytes of the row-wise Kronecker square of X kept between Newton steps (else rebuilt in blocks)
KRON_CACHE_BYTES = 256 * 2**20
#: bytes of one block of that square when it is not cached
ROW_BLOCK_BYTES = 64 * 2**20
#: relative ridge added to S and to the dense reduced matrix (a Newton direction may be inexact)
RIDGE = 1e-11
#: the dense reduced system is factored in float32 and refined in float64 (``DenseNewton._mixed``)
MIXED_PRECISION = True
REFINE_STEPS, REFINE_TOL = 3, 1e-9
#: full recomputation of the cone Gram matrices after this many incremental updates
REFRESH = 20


def _eye(xp, m, ref):
    return xp.eye(m, dtype=ref.dtype, device=device_of(ref))


class WeightedGrams:
    """``[X^T diag(W[:, j]) X]_j`` for X (n, d) and weights W (n, k) -> (k, d, d), as one GEMM
    ``W^T (X (x) X)`` with the row-wise Kronecker square of X, kept when it holds at most
    ``KRON_CACHE_BYTES`` and built in row blocks otherwise; no (n, d, k) temporary."""

    def __init__(self, xp, X):
        self.xp, self.X = xp, X
        self.n, self.d = X.shape
        self.rows = max(1, min(self.n, ROW_BLOCK_BYTES // (8 * self.d * self.d)))
        self.Z = self._kron(X) if 8 * self.n * self.d * self.d <= KRON_CACHE_BYTES else None

    def _kron(self, Xb):
        return self.xp.reshape(Xb[:, :, None] * Xb[:, None, :], (Xb.shape[0], self.d * self.d))

    def __call__(self, W, rows=None):
        """Grams for weights W (n, k); with ``rows`` (an index array), W holds only those rows."""
        xp, d = self.xp, self.d
        k = W.shape[1]
        if self.Z is None and d * d > 8 * k:
            # few groups of many features: the Kronecker GEMM would be thin (memory bound);
            # one batched GEMM X^T diag(w) X per chunk of groups is compute bound instead
            X = self.X if rows is None else xp.take(self.X, rows, axis=0)
            step = max(1, ROW_BLOCK_BYTES // (8 * X.shape[0] * d))
            parts = [(xp.permute_dims(W[:, j:j + step], (1, 0))[:, :, None] * X[None]) for j in range(0, k, step)]
            return xp.concat([xp.matrix_transpose(a) @ X[None] for a in parts], axis=0)
        if self.Z is not None:
            Z = self.Z if rows is None else xp.take(self.Z, rows, axis=0)
            return xp.reshape(W.T @ Z, (W.shape[1], d, d))
        X = self.X if rows is None else xp.take(self.X, rows, axis=0)
        out = None
        for i in range(0, X.shape[0], self.rows):
            part = W[i:i + self.rows].T @ self._kron(X[i:i + self.rows])
            out = part if out is None else out + part
        return xp.reshape(out, (W.shape[1], d, d))


class ConeCurvature:
    """``X^T diag(a_j) X`` for the 0/1 cone activity a (n, 2PC) of each Newton step, updated
    from the rows whose activity changed (exact: a Gram matrix is linear in the weights)."""

    def __init__(self, grams: WeightedGrams):
        self.grams, self.xp = grams, grams.xp
        self.mask = self.value = None
        self.updates = 0

    def __call__(self, active):
        xp = self.xp
        if self.mask is not None and self.updates < REFRESH:
            changed = xp.nonzero(xp.any(active != self.mask, axis=1))[0]
            if 2 * changed.shape[0] <= active.shape[0]:
                if changed.shape[0]:
                    diff = xp.take(active, changed, axis=0) - xp.take(self.mask, changed, axis=0)
                    self.value = self.value + self.grams(diff, changed)
                self.mask, self.updates = active, self.updates + 1
                return self.value
        self.mask, self.value, self.updates = active, self.grams(active), 0
        return self.value


def pattern_gram(grams: WeightedGrams, D):
    """``Q = [X^T diag(D_p D_q) X]_pq`` as a (P d, P d) matrix (rows ordered (p, a))."""
    xp = grams.xp
    n, d, P = grams.n, grams.d, D.shape[1]
    pairs = xp.reshape(D[:, :, None] * D[:, None, :], (n, P * P))
    blocks = xp.reshape(grams(pairs), (P, P, d, d))
    return xp.reshape(xp.permute_dims(blocks, (0, 2, 1, 3)), (P * d, P * d))


class _Reduced:
    """The elimination of the two signs shared by every way of solving the reduced system.

    X (n, d), D (n, P), C outputs. ``solve`` returns the Newton direction (d, 2PC) for
    ``r = -grad``; subclasses solve ``(W + Q) e = g`` in ``reduced_solve``."""

    def __init__(self, xp, X, D, C: int):
        self.xp, self.X, self.D, self.C = xp, X, D, int(C)
        self.n, self.d = X.shape
        self.P = D.shape[1]
        self.grams = WeightedGrams(xp, X)
        self.cone = ConeCurvature(self.grams)
        self.iterations = []  # inner iterations per solve (CG), when there are any

    def reset(self) -> None:
        """Forget what earlier solves left (the incremental cone curvature), so that a run
        depends only on its start: a resumed solve repeats it bit for bit."""
        self.cone = ConeCurvature(self.grams)

    def solve(self, B, active, tau: float, r, radial=None):
        """Newton direction (d, 2PC) for ``r = -grad``.

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
        radial : array of shape (d, 2PC), optional
            Unit radial directions of the active groups (0 for the others), for the
            preconditioner of ``WoodburyNewton``.
        """
        xp, d, P, C = self.xp, self.d, self.P, self.C
        M = xp.reshape(B + tau * self.cone(active), (2, P, C, d, d))
        Mv, Mw = M[0], M[1]                                            # (P, C, d, d)
        S = Mv + Mw
        S = S + RIDGE * xp.max(xp.linalg.diagonal(S), axis=-1)[..., None, None] * _eye(xp, d, S)
        r4 = xp.reshape(r, (d, 2, P, C))
        ra = xp.permute_dims(r4[:, 0], (1, 2, 0))[..., None]           # (P, C, d, 1)
        rb = xp.permute_dims(r4[:, 1], (1, 2, 0))[..., None]
        LS = cholesky(S)
        sol = cho_solve(LS, xp.concat([ra, rb], axis=-1))              # S^-1 [ra, rb]
        Sra, Srb = sol[..., :1], sol[..., 1:]
        g = Mw @ Sra - Mv @ Srb                                        # (P, C, d, 1)
        e = self.reduced_solve(LS, Mv, Mw, g[..., 0], radial)          # (P, C, d)
        db = Sra + Srb - cho_solve(LS, Mv @ e[..., None])
        da = db + e[..., None]
        out = xp.stack([da[..., 0], db[..., 0]], axis=0)               # (2, P, C, d)
        return xp.reshape(xp.permute_dims(out, (3, 0, 1, 2)), (d, 2 * P * C))

    def parallel_sum(self, LS, Mv):
        """``W = Mv - Mv S^-1 Mv = Mv S^-1 Mw`` (P, C, d, d), symmetrised."""
        xp = self.xp
        par = Mv - Mv @ cho_solve(LS, Mv)
        return 0.5 * (par + xp.matrix_transpose(par))


class DenseNewton(_Reduced):
    """The reduced system by C batched Cholesky factorisations of ``K_c = Q + W_c``.
    Q (P d, P d) is formed once (P^2 n d^2 flops); a solve costs C (P d)^3 / 3."""

    name = "dense"

    def __init__(self, xp, X, D, C: int):
        super().__init__(xp, X, D, C)
        self.Q = pattern_gram(self.grams, D)
        self.mixed = MIXED_PRECISION

    def reset(self) -> None:
        super().reset()
        self.mixed = MIXED_PRECISION

    @staticmethod
    def bytes_needed(n: int, d: int, P: int, C: int, itemsize: int = 8) -> int:
        """Memory of Q and the C reduced matrices and their factors."""
        return itemsize * (2 * C + 1) * (P * d) ** 2

    @staticmethod
    def flops(n: int, d: int, P: int, C: int) -> float:
        return 2.0 * P * C * n * d * d + C * (P * d) ** 3 / 3.0

    def reduced_solve(self, LS, Mv, Mw, g, radial):
        xp, d, P, C = self.xp, self.d, self.P, self.C
        par = self.parallel_sum(LS, Mv)
        K = add_diagonal_blocks(xp.broadcast_to(self.Q[None], (C, P * d, P * d)) * 1.0, par)
        K = K + RIDGE * xp.max(xp.linalg.diagonal(K), axis=-1)[..., None, None] * _eye(xp, P * d, K)
        gc = xp.reshape(xp.permute_dims(g, (1, 0, 2)), (C, P * d, 1))
        e = self._mixed(K, gc) if self.mixed else None
        if e is None:
            e = cho_solve(cholesky(K), gc)                             # (C, P d, 1)
        return xp.permute_dims(xp.reshape(e, (C, P, d)), (1, 0, 2))

    def _mixed(self, K, b):
        """``K^-1 b`` from a float32 Cholesky factor (half the time of float64) refined in
        float64; None when the factor fails or the refinement does not reach ``REFINE_TOL``
        (K too ill-conditioned for float32), and mixed precision is then off for good."""
        xp = self.xp
        K32 = xp.astype(K, xp.float32)
        L = cholesky_or_nan(K32)
        x = xp.zeros_like(b)
        r = b
        bnorm = xp.sqrt(xp.sum(b * b, axis=(1, 2)))
        for _ in range(REFINE_STEPS):
            x = x + xp.astype(cho_solve(L, xp.astype(r, xp.float32)), b.dtype)
            r = b - K @ x
        ok = to_float(xp.max(xp.sqrt(xp.sum(r * r, axis=(1, 2))) / xp.maximum(bnorm, 1e-300))) <= REFINE_TOL
        if not ok:  # NaN (a failed factor) compares False too
            self.mixed = False
            return None
        return x


class WoodburyNewton(_Reduced):
    """The reduced system by preconditioned conjugate gradients on ``K = W + Q``; the
    preconditioner is ``(W~ + Q)^-1`` by Woodbury through the n x n capacitance (see the
    module docstring). Memory n^2 C; a solve costs C P (n d^2 + n^2 d) + C n^3 / 3 flops
    for the preconditioner and 4 n d P C per CG iteration."""

    name = "woodbury-cg"
    #: CG stops at this relative residual, or after MAX_CG iterations
    CG_TOL, MAX_CG = 1e-9, 200
    #: the preconditioner is rebuilt when the last solve needed more CG iterations than this (a
    #: rebuild costs as much as hundreds of CG iterations: P (n d^2 + n^2 d) against 4 n d P)
    REUSE_BELOW = 80

    def __init__(self, xp, X, D, C: int):
        super().__init__(xp, X, D, C)
        self._pre = None
        self.rebuilt = []  # the solve counts at which the preconditioner was rebuilt

    def reset(self) -> None:
        super().reset()
        self._pre = None

    @staticmethod
    def bytes_needed(n: int, d: int, P: int, C: int, itemsize: int = 8) -> int:
        return itemsize * (2 * C * n * n + 4 * P * C * d * d + 2 * n * P * d)

    @staticmethod
    def flops(n: int, d: int, P: int, C: int) -> float:
        return 2.0 * P * C * n * d * d + C * P * (2.0 * n * d * d + 2.0 * n * n * d) + C * n**3 / 3.0

    def _XD(self, e):
        """``XD e`` for e (P, C, d) -> (n, C): sum_p D_p X e_pc."""
        xp = self.xp
        Z = self.X @ xp.reshape(xp.permute_dims(e, (2, 0, 1)), (self.d, self.P * self.C))
        return xp.sum(xp.reshape(Z, (self.n, self.P, self.C)) * self.D[:, :, None], axis=1)

    def _XDT(self, z):
        """``XD^T z`` for z (n, C) -> (P, C, d)."""
        xp = self.xp
        m = xp.reshape(self.D[:, :, None] * z[:, None, :], (self.n, self.P * self.C))
        return xp.permute_dims(xp.reshape(self.X.T @ m, (self.d, self.P, self.C)), (1, 2, 0))

    def preconditioner(self, Mv, Mw, radial):
        """Factors of ``(W~ + Q)^-1``: Cholesky of each W~_pc (P, C, d, d) and of the C
        capacitance matrices (C, n, n)."""
        xp, n, d, P, C = self.xp, self.n, self.d, self.P, self.C
        # W~: the radial directions of the active groups get their data curvature ||D_p X x^||^2
        Xr = self.X @ radial                                                        # (n, 2PC)
        curv = xp.sum(xp.reshape(Xr * Xr, (n, 2, P, C)) * self.D[:, None, :, None], axis=0)  # (2, P, C)
        rad = xp.reshape(xp.permute_dims(radial, (1, 0)), (2, P, C, d))
        Mv = Mv + curv[0][..., None, None] * rad[0][..., :, None] * rad[0][..., None, :]
        Mw = Mw + curv[1][..., None, None] * rad[1][..., :, None] * rad[1][..., None, :]
        S = Mv + Mw
        S = S + RIDGE * xp.max(xp.linalg.diagonal(S), axis=-1)[..., None, None] * _eye(xp, d, S)
        pre = self.parallel_sum(cholesky(S), Mv)
        pre = pre + RIDGE * xp.max(xp.linalg.diagonal(pre), axis=-1)[..., None, None] * _eye(xp, d, pre)
        Lw = cholesky(pre)                                                          # (P, C, d, d)
        Winv_XT = cho_solve(Lw, xp.broadcast_to(self.X.T[None, None], (P, C, d, n)))  # W~_pc^-1 X^T
        XWX = xp.permute_dims(self.X[None, None] @ Winv_XT, (1, 0, 2, 3))           # (C, P, n, n)
        Dm = xp.permute_dims(self.D, (1, 0))                                         # (P, n)
        cap = xp.sum(XWX * Dm[None, :, :, None] * Dm[None, :, None, :], axis=1) + _eye(xp, n, self.X)[None]
        return Lw, cholesky(cap)

    def reduced_solve(self, LS, Mv, Mw, g, radial):
        xp = self.xp
        # an earlier step's preconditioner while CG converged fast with it (active sets settle)
        if self._pre is None or not self.iterations or self.iterations[-1] > self.REUSE_BELOW:
            self._pre = self.preconditioner(Mv, Mw, radial)
            self.rebuilt.append(len(self.iterations))
        Lw, Lc = self._pre

        def precond(v):                                                             # (P, C, d)
            a = cho_solve(Lw, v[..., None])[..., 0]
            t = cho_solve(Lc, xp.permute_dims(self._XD(a), (1, 0))[..., None])[..., 0]  # (C, n)
            return a - cho_solve(Lw, self._XDT(xp.permute_dims(t, (1, 0)))[..., None])[..., 0]

        def par(v):                                                                 # W v, from the factor of S
            Mvv = (Mv @ v[..., None])
            return (Mvv - Mv @ cho_solve(LS, Mvv))[..., 0]

        def K(v):
            return par(v) + self._XDT(self._XD(v))

        def dot(a, b):                                                              # per column (C,)
            return xp.sum(xp.sum(a * b, axis=2), axis=0)

        x = precond(g)
        res = g - K(x)
        z = precond(res)
        p = z
        rz = dot(res, z)
        gnorm = xp.sqrt(dot(g, g))
        it = 0
        for it in range(1, self.MAX_CG + 1):
            if to_float(xp.max(xp.sqrt(dot(res, res)) / xp.maximum(gnorm, 1e-300))) <= self.CG_TOL:
                it -= 1
                break
            Kp = K(p)
            alpha = rz / xp.where(dot(p, Kp) > 0, dot(p, Kp), 1.0)
            x = x + alpha[None, :, None] * p
            res = res - alpha[None, :, None] * Kp
            z = precond(res)
            rz_new = dot(res, z)
            p = z + (rz_new / xp.where(rz > 0, rz, 1.0))[None, :, None] * p
            rz = rz_new
        self.iterations.append(it)
        return x


def choose(n: int, d: int, P: int, C: int, budget: float):
    """The Newton-system class for this size (``DenseNewton`` or ``WoodburyNewton``), or None
    with the reason why neither fits ``budget`` bytes: dense while it fits and costs no more
    flops than Woodbury, else Woodbury while its n x n capacitance fits."""
    dense_ok = DenseNewton.bytes_needed(n, d, P, C) <= budget
    wood_ok = WoodburyNewton.bytes_needed(n, d, P, C) <= budget
    if dense_ok and (not wood_ok or DenseNewton.flops(n, d, P, C) <= WoodburyNewton.flops(n, d, P, C)):
        return DenseNewton, None
    if wood_ok:
        return WoodburyNewton, None
    return None, (f"neither Newton system fits in {budget / 2**30:.2f} GiB (dense reduced: "
                  f"{DenseNewton.bytes_needed(n, d, P, C) / 2**30:.2f} GiB, Woodbury: "
                  f"{WoodburyNewton.bytes_needed(n, d, P, C) / 2**30:.2f} GiB)")


#: polish=None runs the endgame when one Newton step is predicted to cost at most this many flops
MAX_DEFAULT_FLOPS = 3e11


def available(n: int, d: int, P: int, C: int, budget: float) -> str | None:
    """Why the endgame cannot run by default at this size with ``budget`` bytes (None: it can)."""
    cls, why = choose(n, d, P, C, budget)
    if cls is None:
        return why
    if cls.flops(n, d, P, C) > MAX_DEFAULT_FLOPS:
        return f"one Newton step ({cls.name}) costs {cls.flops(n, d, P, C):.1e} flops (limit {MAX_DEFAULT_FLOPS:.0e})"
    return None


#: the endgame's first try waits until ADMM has spent the flops of this many Newton steps
#: (ski rental: a try never costs much more than the ADMM iterations before it)
TRY_NEWTON_STEPS = 10
#: and comes no earlier than this iteration (ADMM must first find the active groups)
FIRST_TRY = 100


def admm_flops(n: int, d: int, P: int, C: int) -> float:
    """Flops of one ADMM iteration with the exact u-step: four products with X over the
    2PC groups and the n x n triangular solves."""
    return 8.0 * n * d * 2 * P * C + 4.0 * n * n * C


def first_try(n: int, d: int, P: int, C: int, budget: float) -> int:
    """The iteration of the endgame's first try: ``FIRST_TRY``, or later when
    ``TRY_NEWTON_STEPS`` Newton steps cost more than that many ADMM iterations."""
    cls, _ = choose(n, d, P, C, budget)
    if cls is None:
        return FIRST_TRY
    return max(FIRST_TRY, int(math.ceil(TRY_NEWTON_STEPS * cls.flops(n, d, P, C) / admm_flops(n, d, P, C) / 10.0)) * 10)


def system_for(op, C: int, budget: float = float("inf"), kind: str | None = None):
    """The Newton-system solver for operators ``op`` (float64) and C outputs: ``kind`` "dense"
    or "woodbury-cg", or the one ``choose`` picks for ``budget`` bytes."""
    classes = {cls.name: cls for cls in (DenseNewton, WoodburyNewton)}
    if kind is None:
        cls, why = choose(op.n, op.d, op.P, C, budget)
        if cls is None:
            raise MemoryError(f"the endgame cannot run: {why}")
    else:
        cls = classes[kind]
    return cls(op.xp, op.X, op.D, C)
