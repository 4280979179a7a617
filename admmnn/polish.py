"""Active-set polish of an ADMM iterate: Newton on the reduced smooth problem.

The convex program (sum form, one group j = (h, p, c) per sign, pattern and output)

    p(u) = 0.5 ||F u - Y||_F^2 + beta sum_j ||u_j||_2   s.t.  G_j u_j >= 0

has, at an optimum, a set A of nonzero groups and, for each j in A, a set T_j
of tight cone rows ((G_j u_j)_i = 0). With A and T_j known, the optimum solves
the *reduced* problem

    min  0.5 ||sum_{j in A} F_j u_j - Y||^2 + beta sum_{j in A} ||u_j||
    s.t. S_j u_j = 0,   S_j = rows T_j of G_j = (2 D_p - 1)[T_j] * X[T_j],

which is smooth (no u_j vanishes) and has only equalities. Its KKT point gives
both a primal point and the dual multipliers, so the certificate
(``certificate.dual_bound``, z = F u - Y) closes to rounding level instead of
trailing ADMM's dual residual.

Method
------
* **Equalities by null-space elimination.** ``u_j = N_j w_j`` with N_j (d, k_j)
  an orthonormal basis of null(S_j) (SVD of the |T_j| x d matrix S_j, rank by
  the usual ``max(shape) eps s_max`` rule), so ``||u_j|| = ||w_j||`` and the
  reduced problem is unconstrained in w. Cost per group: one SVD,
  O(|T_j| d min(|T_j|, d) + d^3) with ``full_matrices``.
* **Newton, separately per output column c** (F maps a group with output c
  into column c only, so the problem splits). With M_j = F_j N_j (n, k_j),
  formed once per active set as ``sign_h D_p X N_j`` (one GEMM per group; no
  D_p X or (n, d, P) array), and c_j = beta / ||w_j||:

      grad_j = M_j^T r + c_j w_j,
      H      = M^T M + blockdiag(c_j (I - w^_j w^_j^T)).

  The norm term has *no curvature in the radial direction* w^_j; that
  direction is treated exactly, never regularised:
  - K_c = sum_j k_j <= max(n, dense_max): dense H (K_c x K_c), Cholesky
    (eigendecomposition with a pseudo-inverse if H is singular). M^T M is kept
    across steps (``_Gram``): a step costs K_c^3 / 3 plus n k_j K_c for each
    group whose tight rows changed (one, after a blocked step).
  - otherwise (e.g. Fashion-MNIST, K ~ 12 000 > n = 1000): Woodbury on
    H = C^ + U S U^T with C^ = blockdiag(c_j I), U = [M^T, W] (W holds the
    w^_j), S = diag(I_n, -c). Because W^T C^-1 W = diag(1/c), the capacitance
    matrix is the saddle-point matrix [[B, E], [E^T, 0]] with
    B = I + M C^-1 M^T (n x n, SPD) and E = [M_j w^_j / c_j] (n x |A_c|):
    the radial correction is exact and costs one |A_c| x |A_c| Schur
    complement E^T B^-1 E. Cost O(n^2 K_c + n^3) per Newton step.
  Steps are damped by Armijo backtracking on the reduced objective.
* **Multipliers.** At the reduced optimum g_j = F_j^T r + beta u^_j lies in
  range(S_j^T); mu_{T_j} solves S_j^T mu = g_j (min-norm via the SVD above;
  NNLS when T_j is rank deficient and the min-norm solution has negative
  entries). Rows outside T_j get mu = 0. For an inactive group (u_j = 0,
  every row tight) mu_j must make ||F_j^T z - G_j^T mu_j|| <= beta: the given
  guess is kept if it does, else NNLS over the n rows (``scipy.optimize.nnls``
  on the d x n matrix G_j^T).
* **Active set: a primal (feasible) active-set method**, separately per output
  column, so that the objective decreases monotonically and nothing oscillates:
  - start: each active group of ADMM's u (and, as a second candidate, of v) is
    projected onto its cone {G_j x >= 0} (NNLS on G_j^T), T_j = the rows that
    the projection makes tight; then all groups are scaled by the one factor
    that minimises the objective; the better candidate is kept;
  - every Newton step is cut at the first row outside T_j that it would make
    negative (ratio test), and that row joins T_j ("blocked");
  - when the reduced gradient is below ``loose * beta``, rows of T_j with a
    negative multiplier leave (the most negative one per group; only the most
    negative one overall once such a removal was blocked at once), and an
    inactive group whose best ||F_j^T z - G_j^T mu_j|| exceeds beta enters,
    started by an exact line search along the NNLS direction
    G_j^T mu_j - F_j^T z (feasible: NNLS optimality gives G_j of it >= 0);
  - a group whose norm collapses is dropped; the column is done (``kkt``) when
    no row or group changes and the reduced gradient is below ``gtol * beta``.
  - ``bulk`` (off by default): when several rows block a step, the
    full Newton point projected onto each group's cone is tried as well and
    kept if its objective is lower than the blocked step's (bulk identification
    of many new tight rows, still monotone). On Fashion-MNIST it was never
    kept and its NNLS projections (785 x 1000) cost ~3 s each; on the oracle
    regression problem it made the polish slower. Kept as an option only.
  The result is certified by ``certificate`` (objective with the true ReLU
  outputs, dual bound from z = F u - Y and mu); the input comes back if that
  does not beat its own certificate (|gap|: a negative gap only means that
  the input violates the cone).

What did not work (measured on the oracle problems after 300 ADMM iterations):
plain primal-dual active-set rounds (solve the reduced problem with the ADMM
guess of T_j, add every violated row, drop every negative multiplier) blew up
(objective 30 -> 1 900 on the correlated problem) because the unconstrained
reduced problem jumps far when T_j is wrong; projecting the ADMM groups onto
{S_j x = 0} for the guessed T_j (instead of onto the cone) gave starts 40x above
the optimum; removing a negative-multiplier row in every group at once was
immediately blocked by the same rows (cycling).
On the tutorial's fit the same bulk rounds (every violated row in, every
negative multiplier out, per column), started from ADMM's tight-row guess (rows
with mu > 0; against Clarabel's tight rows, 774 extra and 152 missing among 6 552
after 400 iterations, 2 465 extra and 398 missing among 7 997 after 200),
toggled 200 to 3 500 rows per round (from 200 iterations) for 30 rounds in every
column without settling.

Shapes: X (n, d), Y (n, C), u, v (d, 2PC), mu (n, 2PC), group
j = h*P*C + p*C + c. Everything runs on the host in float64 NumPy/SciPy; the
result's arrays are NumPy. ``op`` may carry any ``cone_scale``: the polish uses
``op.with_cone_scale(1.0)`` and ``mu`` is always the *unscaled* multiplier.

Cost: one SVD and one GEMM X N_j (n d k_j) per change of a group's tight rows,
one NNLS (d x n) per projected group, and per Newton step either
K_c^3 / 3 + n k_j K_c (dense, ``_Gram``) or n^2 K_c + n^3 (Woodbury). Small dense factorizations
run on one BLAS thread (``threadpoolctl``): on a busy 2-core machine a threaded
300 x 300 Cholesky took 55 ms instead of 0.2 ms. The number of steps grows with
the number of tight rows that the start gets wrong, one Newton step per
blocked row: the polish pays when the ADMM active set is nearly right. On the
tutorial's fit (digits, 10 classes, P = 10: 200 groups of 65 weights with about 30
tight rows each) it needed 4 748 steps from 400 ADMM iterations (3 729 rows
blocked, 657 removed) and then certified a relative gap of 3e-12.

What did not pay either (measured on that fit, 300 steps from 400 iterations):
preconditioned CG on the dense Newton system with the Cholesky factor of an
earlier step (one factorisation per column, 22 CG iterations per step on
average) took twice the time of a new Cholesky factor per step.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
from scipy.optimize import nnls

from . import certificate
from ._backend import to_numpy
from .operators import Operators


@dataclass
class PolishResult:
    """Polished point and its certificate.

    u : (d, 2PC) NumPy array, the polished groups (zero outside the active set).
    mu : (n, 2PC) NumPy array, unscaled cone multipliers (>= 0).
    objective : ``certificate.objective`` at u (true ReLU outputs).
    dual_bound : ``certificate.dual_bound`` at (z = F u - Y, mu): a certified lower bound.
    cone_violation : relative cone violation at u.
    info : rounds, Newton steps, active-set sizes, seconds, and ``improved``
        (False when no round beat the input's certificate; then u, mu are the input's).
    """

    u: np.ndarray
    mu: np.ndarray
    objective: float
    dual_bound: float
    cone_violation: float
    info: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return self.objective - self.dual_bound

    @property
    def rel_gap(self) -> float:
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)


def _group_index(j, P, C):
    """(sign of F_j, pattern p, output c) of group j."""
    h, rest = divmod(j, P * C)
    p, c = divmod(rest, C)
    return (1.0 if h == 0 else -1.0), p, c


def _certify(op1, u, Y, beta, mu):
    obj, viol = certificate.objective(op1, u, Y, beta)
    lb = certificate.dual_bound(op1, u, Y, beta, mu)
    return float(obj), float(lb), float(viol)


def _null_space(S, d):
    """Orthonormal basis of null(S) (d, k) and the SVD pieces (U_r, s_r, V_r) of S."""
    if S.shape[0] == 0:
        return np.eye(d), None
    U, s, Vt = sla.svd(S, full_matrices=True, lapack_driver="gesdd")
    tol = max(S.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    r = int(np.sum(s > tol))
    return Vt[r:].T.copy(), (U[:, :r], s[:r], Vt[:r].T)


def _single_thread(size):
    """A context that runs BLAS/LAPACK on one thread for small matrices: on a busy
    2-core machine a multi-threaded Cholesky of a 300 x 300 matrix was measured
    at 55 ms instead of 0.2 ms (threads waiting for each other)."""
    if size > 1500:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _solve_newton(Ms, w, c, b, dense_max, gram=None):
    """Solve H x = b with H = M^T M + blockdiag(c_j (I - w^_j w^_j^T)).

    Ms: list of (n, k_j); w: list of (k_j,); c: (a,) c_j = beta / ||w_j||; b: (K,);
    gram: M^T M (K, K) when the caller keeps it (``_Gram``), used by the dense form."""
    ks = [m.shape[1] for m in Ms]
    off = np.concatenate([[0], np.cumsum(ks)])
    K, n = off[-1], Ms[0].shape[0]
    what = [wj / np.linalg.norm(wj) for wj in w]
    if K <= max(n, dense_max):
        if gram is None:
            M = np.hstack(Ms)
            gram = M.T @ M
        H = gram.copy()
        for j in range(len(Ms)):
            sl_ = slice(off[j], off[j + 1])
            H[sl_, sl_] += c[j] * (np.eye(ks[j]) - np.outer(what[j], what[j]))
        try:
            return sla.cho_solve(sla.cho_factor(H, lower=True, check_finite=False), b, check_finite=False)
        except np.linalg.LinAlgError:
            lam, V = np.linalg.eigh(H)
            keep = lam > lam[-1] * K * np.finfo(float).eps
            return V[:, keep] @ ((V[:, keep].T @ b) / lam[keep])
    # Woodbury with the exact radial correction (see the module docstring)
    cinv = np.concatenate([np.full(k, 1.0 / cj) for k, cj in zip(ks, c)])
    Msc = np.hstack([m * np.sqrt(1.0 / cj) for m, cj in zip(Ms, c)])
    B = Msc @ Msc.T
    B[np.diag_indices(n)] += 1.0
    E = np.stack([m @ wh / cj for m, wh, cj in zip(Ms, what, c)], axis=1)  # (n, a)
    bc = b * cinv
    p = sum(m @ bc[off[j]:off[j + 1]] for j, m in enumerate(Ms))
    q = np.array([wh @ b[off[j]:off[j + 1]] / cj for j, (wh, cj) in enumerate(zip(what, c))])
    cf = sla.cho_factor(B, lower=True, check_finite=False)
    BiE = sla.cho_solve(cf, E, check_finite=False)
    Bip = sla.cho_solve(cf, p, check_finite=False)
    Sch = E.T @ BiE
    y = np.linalg.lstsq(Sch, E.T @ Bip - q, rcond=None)[0]
    x = Bip - BiE @ y
    corr = np.concatenate([(m.T @ x + y[j] * what[j]) for j, m in enumerate(Ms)])
    return bc - cinv * corr


_TRACE = False


class _Gram:
    """The matrices M_j = sign_j D_p X N_j (n, k_j) of one column's active groups and
    their Gram matrix M^T M, kept across Newton steps: a group's blocks are recomputed
    (one GEMM M_j^T M, n k_j K flops) only when its basis N_j changed, i.e. when its
    tight rows changed; the other blocks are copied. Without it every Newton step
    formed M^T M anew (n K^2 flops), more than the Cholesky factor (K^3 / 3)."""

    def __init__(self, Dm):
        self.Dm = Dm
        self.M = {}  # group -> (N it was built from, M_j)
        self.prev = ({}, None)  # group -> (N, offset, k) in the last Gram matrix, that matrix

    def mats(self, keys, act):
        out = []
        for i in keys:
            g = act[i]
            hit = self.M.get(i)
            if hit is None or hit[0] is not g.N:
                hit = (g.N, g.sgn * self.Dm[:, g.p][:, None] * g.XN)
                self.M[i] = hit
            out.append(hit[1])
        return out

    def gram(self, keys, act, Ms):
        """M^T M (K, K) for the groups ``keys`` in that order."""
        ks = [m.shape[1] for m in Ms]
        off = np.concatenate([[0], np.cumsum(ks)]).astype(int)
        H = np.empty((off[-1], off[-1]))
        where, H_old = self.prev
        same = [a for a, i in enumerate(keys) if i in where and where[i][0] is act[i].N]
        if same:
            new_idx = np.concatenate([np.arange(off[a], off[a + 1]) for a in same])
            old_idx = np.concatenate([np.arange(where[keys[a]][1], where[keys[a]][1] + ks[a]) for a in same])
            H[np.ix_(new_idx, new_idx)] = H_old[np.ix_(old_idx, old_idx)]
        changed = [a for a in range(len(keys)) if a not in set(same)]
        if changed:
            c_idx = np.concatenate([np.arange(off[a], off[a + 1]) for a in changed])
            blk = np.hstack([Ms[a] for a in changed]).T @ np.hstack(Ms)
            H[c_idx, :] = blk
            H[:, c_idx] = blk.T
        self.prev = ({i: (act[i].N, off[a], ks[a]) for a, i in enumerate(keys)}, H)
        return H


class _Group:
    """An active group of one output column: its tight rows, null-space basis
    N (d, k), the SVD pieces of S_j (for the multipliers), X N (n, k) and w (k,)."""

    __slots__ = ("j", "sgn", "p", "rows", "N", "svd", "XN", "w")

    def __init__(self, j, sgn, p, rows):
        self.j, self.sgn, self.p, self.rows = j, sgn, p, rows

    def build(self, X, Sg, x):
        """Factor the tight rows and set w = N^T x (x satisfies them up to rounding)."""
        idx = np.flatnonzero(self.rows)
        self.N, self.svd = _null_space(Sg[idx, self.p][:, None] * X[idx], X.shape[1])
        self.XN = X @ self.N
        self.w = self.N.T @ x
        return self.N.shape[1] > 0

    def x(self):
        return self.N @ self.w


class _Stats:
    def __init__(self):
        self.newton = self.blocked = self.removed = self.entered = self.dropped = self.builds = 0
        self.nnls = self.bulk = 0


def _project_group(X, Sg, j, sgn, p, x, st, guess=None):
    """A group started at the Euclidean projection of x onto the cone {G_j x >= 0}
    (x + G_j^T lam with lam = NNLS(G_j^T, -x)), its tight rows those with lam > 0
    or G_j x ~ 0; None if that projection is 0."""
    n = X.shape[0]
    Gt = (Sg[:, p][:, None] * X).T
    gx0 = Gt.T @ x
    if np.any(gx0 < 0):
        st.nnls += 1
        lam, _ = nnls(Gt, -x, maxiter=20 * n)
        xp = x + Gt @ lam
    else:
        lam, xp = np.zeros(n), x
    gx = Gt.T @ xp
    scale = max(np.abs(gx).max(), 1e-300)
    rows = (lam > 0) | (gx <= 1e-12 * scale)
    if guess is not None:
        rows |= guess & (gx <= 1e-6 * scale)
    g = _Group(j, sgn, p, rows)
    st.builds += 1
    if g.build(X, Sg, xp) and np.any(g.w):
        return g
    return None


def _polish_column(X, Dm, Sg, y, beta, cols, x0s, T0, mu0, st, *, max_steps, gtol, loose, dense_max, deadline, bulk_ok=False, start_rows="projection"):
    """Primal active-set Newton for one output column (see the module docstring).

    cols : list of (j, sign, p) of the groups with this output; x0s: candidate starts (d, m),
    T0 (n, m) tight-row guess, mu0 (n, m) multiplier guess (m = len(cols)).
    Returns x (d, m), mu (n, m) and whether a KKT point was reached."""
    n, d = X.shape
    m = len(cols)
    # feasible start, from each candidate start (ADMM's u and v): project each group onto
    # {S_j x = 0}, add the rows that the projection violates, repeat; then scale all groups
    # by the one factor that minimises the objective (scaling keeps the cone constraints)
    best = None
    for x0 in x0s:
        cand = {}
        for i, (j, sgn, p) in enumerate(cols):
            if not np.any(x0[:, i]):
                continue
            g = _project_group(X, Sg, j, sgn, p, x0[:, i], st, T0[:, i] if start_rows == "guess" else None)
            if g is not None:
                cand[i] = g
        Fx = sum((g.sgn * Dm[:, g.p] * (g.XN @ g.w) for g in cand.values()), np.zeros(n))
        nx = sum(np.linalg.norm(g.w) for g in cand.values())
        s = max(0.0, (y @ Fx - beta * nx) / max(Fx @ Fx, 1e-300))
        f = 0.5 * np.sum((s * Fx - y) ** 2) + beta * s * nx
        if s > 0 and (best is None or f < best[0]):
            for g in cand.values():
                g.w = s * g.w
            best = (f, cand)
    act = best[1] if best is not None else {}
    grams = _Gram(Dm)
    just_removed = set()
    per_group = True
    mu = mu0.copy()
    kkt = False
    final_steps = 0

    def residual():
        r = -y.copy()
        for g in act.values():
            r += g.sgn * Dm[:, g.p] * (g.XN @ g.w)
        return r

    for _ in range(max_steps):
        if deadline is not None and time.perf_counter() > deadline:
            break
        r = residual()
        keys = sorted(act)
        if keys:
            norms = np.array([np.linalg.norm(act[i].w) for i in keys])
            c = beta / norms
            Ms = grams.mats(keys, act)
            grads = [M.T @ r + ci * act[i].w for M, ci, i in zip(Ms, c, keys)]
            gmax = max(np.linalg.norm(gr) for gr in grads) / beta
        else:
            gmax = 0.0
        if gmax <= loose:
            # the reduced problem is (nearly) solved: check the multipliers and the inactive groups
            changed = False
            mu[:] = 0.0
            just_removed = set()
            negs = {}
            for i in keys:
                g = act[i]
                idx = np.flatnonzero(g.rows)
                if idx.size == 0 or g.svd is None:
                    continue
                xj = g.x()
                grad_u = g.sgn * (X.T @ (Dm[:, g.p] * r)) + beta * xj / np.linalg.norm(xj)
                Ur, sr, Vr = g.svd
                mj = Ur @ ((Vr.T @ grad_u) / sr)
                if mj.min() < 0 and idx.size > sr.size:  # rank deficient: look for a non-negative solution
                    S = Sg[idx, g.p][:, None] * X[idx]
                    st.nnls += 1
                    m2, _ = nnls(S.T, grad_u, maxiter=10 * idx.size)
                    if np.linalg.norm(S.T @ m2 - grad_u) <= 1e-9 * max(np.linalg.norm(grad_u), beta):
                        mj = m2
                mu[idx, i] = np.maximum(mj, 0)
                a = int(np.argmin(mj))
                if mj[a] < -1e-9 * max(np.abs(mj).max(), 1e-300):
                    negs[i] = (idx[a], mj[a] / max(np.abs(mj).max(), 1e-300))
            # rows with a negative multiplier leave T_j: the most negative one per group, or
            # only the most negative one overall once a removal was blocked straight away
            if negs:
                pick = list(negs) if per_group else [min(negs, key=lambda i: negs[i][1])]
                for i in pick:
                    g, row = act[i], negs[i][0]
                    if _TRACE: print("remove", i, row, negs[i][1], "f", 0.5 * r @ r + beta * sum(np.linalg.norm(a.w) for a in act.values()))
                    xj = g.x()
                    g.rows[row] = False
                    mu[row, i] = 0.0
                    st.removed += 1
                    st.builds += 1
                    g.build(X, Sg, xj)
                    just_removed.add((i, row))
                changed = True
            if not changed:
                for i, (j, sgn, p) in enumerate(cols):
                    if i in act:
                        continue
                    Gt = (Sg[:, p][:, None] * X).T  # (d, n)
                    FTr = sgn * (X.T @ (Dm[:, p] * r))
                    if np.linalg.norm(FTr - Gt @ mu0[:, i]) <= beta * (1 - 1e-9):
                        mu[:, i] = mu0[:, i]
                        continue
                    st.nnls += 1
                    m2, res = nnls(Gt, FTr, maxiter=20 * n)
                    mu[:, i] = m2
                    if res <= beta * (1 + 1e-9):
                        continue
                    qd = Gt @ m2 - FTr  # a feasible descent direction: G_j qd >= 0
                    Fq = sgn * Dm[:, p] * (X @ qd)
                    t = max(0.0, -(r @ Fq) - beta * np.linalg.norm(qd)) / max(Fq @ Fq, 1e-300)
                    if t <= 0:
                        continue
                    gq = Sg[:, p] * (X @ qd)
                    g = _Group(j, sgn, p, gq <= 1e-12 * max(np.abs(gq).max(), 1e-300))
                    st.builds += 1
                    if g.build(X, Sg, t * qd):
                        act[i] = g
                        r = r + t * Fq
                        st.entered += 1
                        changed = True
            if not changed:
                if gmax <= gtol or final_steps >= 4 or not keys:
                    kkt = True
                    break
                final_steps += 1
            else:
                final_steps = 0
                continue
        # Newton step on the reduced problem, with a ratio test on the rows outside T_j
        st.newton += 1
        b = -np.concatenate(grads)
        gram = grams.gram(keys, act, Ms) if b.size <= max(n, dense_max) else None
        with _single_thread(min(b.size, n)):
            dx = _solve_newton(Ms, [act[i].w for i in keys], c, b, dense_max, gram)
        off = np.cumsum([0] + [act[i].w.size for i in keys])
        dws = [dx[off[a]:off[a + 1]] for a in range(len(keys))]
        amax, blocking = 1.0, []
        for a, i in enumerate(keys):
            g = act[i]
            gx = Sg[:, g.p] * (g.XN @ g.w)
            dg = Sg[:, g.p] * (g.XN @ dws[a])
            cand = (~g.rows) & (dg < 0)
            if cand.any():
                ratios = np.maximum(gx[cand], 0) / -dg[cand]
                blocking.append((a, np.flatnonzero(cand), ratios))
                amax = min(amax, ratios.min())
        f0 = 0.5 * r @ r + beta * norms.sum()
        slope = b @ dx  # = -grad . dx < 0
        alpha = amax
        Mdx = sum(M @ dw for M, dw in zip(Ms, dws))
        for _ in range(60):
            rt = r + alpha * Mdx
            ft = 0.5 * rt @ rt + beta * sum(np.linalg.norm(act[i].w + alpha * dw) for i, dw in zip(keys, dws))
            if ft <= f0 - 1e-4 * alpha * slope + 1e-15 * abs(f0):
                break
            alpha *= 0.5
        else:
            alpha = 0.0
        for i, dw in zip(keys, dws):
            act[i].w = act[i].w + alpha * dw
        bulk = False
        if bulk_ok and alpha == amax and amax < 1.0 and sum(int(np.sum(rt_ < 1.0)) for _, _, rt_ in blocking) > 1:
            # several rows block the full step: try the bulk update, i.e. project the full
            # Newton point onto each group's cone (tight rows from the projection), and keep
            # it if it beats the blocked step (so the objective still decreases monotonically)
            trial = {}
            for i, dw in zip(keys, dws):
                g = act[i]
                xf = g.N @ (g.w + (1 - alpha) * dw)
                gf = Sg[:, g.p] * (X @ xf)
                if np.all(gf[~g.rows] >= 0):
                    ng_ = _Group(g.j, g.sgn, g.p, g.rows)
                    ng_.N, ng_.svd, ng_.XN, ng_.w = g.N, g.svd, g.XN, g.N.T @ xf
                    trial[i] = ng_
                else:
                    ng_ = _project_group(X, Sg, g.j, g.sgn, g.p, xf, st)
                    if ng_ is not None:
                        trial[i] = ng_
            rt_ = -y.copy()
            for g in trial.values():
                rt_ += g.sgn * Dm[:, g.p] * (g.XN @ g.w)
            f_trial = 0.5 * rt_ @ rt_ + beta * sum(np.linalg.norm(g.w) for g in trial.values())
            if f_trial < ft:
                act = trial
                bulk = True
                st.bulk += 1
        if alpha == amax and amax < 1.0 and not bulk:
            for a, idx, ratios in blocking:
                hit = idx[ratios <= amax * (1 + 1e-9) + 1e-300]
                if hit.size:
                    if amax <= 1e-12 and any((keys[a], h) in just_removed for h in hit):
                        per_group = False
                    if _TRACE: print("block", keys[a], hit, "alpha", alpha, "amax", amax, "f", f0, "gmax", gmax)
                    g = act[keys[a]]
                    g.rows[hit] = True
                    st.blocked += hit.size
                    st.builds += 1
                    if not g.build(X, Sg, g.x()):
                        del act[keys[a]]
                        st.dropped += 1
        nn = {i: np.linalg.norm(act[i].w) for i in act}
        top = max(nn.values()) if nn else 0.0
        for i in [i for i, v in nn.items() if v <= 1e-10 * top]:
            del act[i]
            st.dropped += 1
        if alpha == 0.0 and amax > 0:
            break  # no descent possible (rounding): stop
    x = np.zeros((d, m))
    for i, g in act.items():
        x[:, i] = g.x()
    return x, mu, kkt


def polish(op, Y, beta, v, u=None, nu_mu=None, *, tight=None, max_steps=1000, gtol=1e-13, loose=1e-8,
           tight_tol=1e-3, dense_max=5000, bulk=False, time_limit=None) -> PolishResult:
    """Polish an ADMM iterate by an active-set Newton method on the reduced problem (module docstring).

    op : ``Operators`` (any cone_scale). Y : (n,) or (n, C). beta : group weight.
    v : (d, 2PC) sparse iterate; its nonzero groups are the initial active set.
    u : (d, 2PC) ADMM's u (the start on the active groups; default v).
    nu_mu : (n, 2PC) unscaled cone multiplier guess, e.g. ``max(-rho nu, 0)``.
    tight : optional (n, 2PC) boolean initial tight rows (e.g. ADMM's ``s == 0``);
        default: rows with mu > 0 or ``G_j u_j <= tight_tol * max_i |G_j u_j|``.
    max_steps : cap on Newton steps plus active-set changes, per output column.
    gtol, loose : the reduced gradient (divided by beta) at which Newton stops,
        and at which the active set is checked.
    dense_max : the largest dense Hessian (unknowns per output column) when the
        Woodbury form (n x n) is not smaller.
    time_limit : seconds (checked between steps).

    Returns a ``PolishResult``. If the polished point does not certify a smaller
    gap than the input (u, or v when u is None, with nu_mu), the input comes back
    with ``info["improved"] = False``.
    """
    t0 = time.perf_counter()
    X = np.asarray(to_numpy(op.X), dtype=np.float64)
    Dm = np.asarray(to_numpy(op.D), dtype=np.float64)
    n, d = X.shape
    P = Dm.shape[1]
    Y = np.asarray(to_numpy(Y), dtype=np.float64).reshape(n, -1)
    C = Y.shape[1]
    op1 = Operators(X, Dm, C, 1.0)
    ng = op1.n_groups
    beta = float(beta)
    v = np.asarray(to_numpy(v), dtype=np.float64)
    u0 = v if u is None else np.asarray(to_numpy(u), dtype=np.float64)
    mu_in = np.zeros((n, ng)) if nu_mu is None else np.maximum(np.asarray(to_numpy(nu_mu), dtype=np.float64), 0.0)
    Sg = 2 * Dm - 1
    meta = [_group_index(j, P, C) for j in range(ng)]
    obj_in, lb_in, viol_in = _certify(op1, u0, Y, beta, mu_in)
    if tight is not None:
        T = np.asarray(to_numpy(tight), dtype=bool)
    else:
        Gu0 = op1.signed(X @ u0)
        mmax = mu_in.max() if mu_in.size else 0.0
        T = (mu_in > 1e-9 * mmax) if mmax > 0 else np.zeros((n, ng), bool)
        T = T | (Gu0 <= tight_tol * np.abs(Gu0).max(axis=0, keepdims=True))
    on = np.linalg.norm(v, axis=0) > 0
    starts = [np.where(on, u0, 0.0)] + ([np.asarray(v)] if u is not None else [])
    deadline = None if time_limit is None else t0 + time_limit
    st = _Stats()
    bulk_ok = (n * d >= 200_000) if bulk == "auto" else bool(bulk)
    u_pol, mu_pol = np.zeros((d, ng)), np.zeros((n, ng))
    kkt = []
    for c in range(C):
        js = [j for j in range(ng) if meta[j][2] == c]
        cols = [(j, meta[j][0], meta[j][1]) for j in js]
        x, mu, ok = _polish_column(X, Dm, Sg, Y[:, c], beta, cols, [x[:, js] for x in starts], T[:, js], mu_in[:, js], st,
                                   max_steps=max_steps, gtol=gtol, loose=loose, dense_max=dense_max, bulk_ok=bulk_ok,
                                   deadline=deadline)
        u_pol[:, js], mu_pol[:, js] = x, mu
        kkt.append(ok)
    obj, lb, viol = _certify(op1, u_pol, Y, beta, mu_pol)
    info = {"objective_in": obj_in, "dual_bound_in": lb_in, "rel_gap_in": (obj_in - lb_in) / max(abs(obj_in), 1e-300),
            "kkt": all(kkt), "newton_steps": st.newton, "rows_blocked": st.blocked, "rows_removed": st.removed,
            "bulk_updates": st.bulk, "groups_entered": st.entered, "groups_dropped": st.dropped, "factorizations": st.builds, "nnls": st.nnls,
            "active": int(np.sum(np.linalg.norm(u_pol, axis=0) > 0)), "seconds": time.perf_counter() - t0}
    info.update(objective_polished=obj, dual_bound_polished=lb, cone_violation_polished=viol)
    # a negative gap only says that the point violates the cone: compare |gap|
    improved = viol <= max(viol_in, 1e-12) and abs(obj - lb) < abs(obj_in - lb_in)
    info["improved"] = bool(improved)
    if not improved:
        return PolishResult(u0, mu_in, obj_in, lb_in, viol_in, info)
    return PolishResult(u_pol, mu_pol, obj, lb, viol, info)


__all__ = ["polish", "PolishResult"]
