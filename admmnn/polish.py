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
    (eigendecomposition with a pseudo-inverse if H is singular). Cost
    O(n K_c^2 + K_c^3).
  - otherwise (e.g. Fashion-MNIST, K ~ 12 000 > n = 1000): Woodbury on
    H = C^ + U S U^T with C^ = blockdiag(c_j I), U = [M^T, W] (W holds the
    w^_j), S = diag(I_n, -c). Because W^T C^-1 W = diag(1/c), the capacitance
    matrix is the saddle-point matrix [[B, E], [E^T, 0]] with
    B = I + M C^-1 M^T (n x n, SPD) and E = [M_j w^_j / c_j] (n x |A_c|):
    the radial correction is exact and costs one |A_c| x |A_c| Schur
    complement E^T B^-1 E. Cost O(n^2 K_c + n^3) per Newton step.
  Steps are damped by Armijo backtracking on the reduced objective; a group
  whose norm collapses is dropped (set to zero) and the Newton restarts.
* **Multipliers.** At the reduced optimum g_j = F_j^T r + beta u^_j lies in
  range(S_j^T); mu_{T_j} solves S_j^T mu = g_j (min-norm via the SVD above;
  NNLS when T_j is rank deficient and the min-norm solution has negative
  entries). Rows outside T_j get mu = 0. For an inactive group (u_j = 0,
  every row tight) mu_j must make ||F_j^T z - G_j^T mu_j|| <= beta: the given
  guess is kept if it does, else NNLS over the n rows (``scipy.optimize.nnls``
  on the d x n matrix G_j^T).
* **Active-set updates** (primal-dual active set, capped at ``max_rounds``):
  rows outside T_j with G_j u_j < 0 join T_j; rows of T_j with mu < 0 leave
  it (when nothing joins, only the most negative per group, which damps the
  oscillation that plain primal-dual active-set steps can show); an inactive
  group whose best ||F_j^T z - G_j^T mu_j|| exceeds beta joins A, started by a
  line search along the NNLS direction G_j^T mu_j - F_j^T z (feasible, since
  NNLS optimality gives G_j (G_j^T mu - F_j^T z) >= 0), with T_j = supp(mu_j).
  Every round is certified; the best certified point (lowest gap among those
  with cone violation <= ``max_violation``) is returned.

Shapes: X (n, d), Y (n, C), u, v (d, 2PC), mu (n, 2PC), group
j = h*P*C + p*C + c. Everything runs on the host in float64 NumPy/SciPy; the
result's arrays are NumPy. ``op`` may carry any ``cone_scale``: the polish uses
``op.with_cone_scale(1.0)`` and ``mu`` is always the *unscaled* multiplier.

Cost (2 cores, float64; see the benchmark in the report of the polish branch):
dominated by forming M (sum_j n d k_j), and per Newton step either
n K_c^2 + K_c^3 (dense) or n^2 K_c + n^3 (Woodbury).
"""
from __future__ import annotations

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


def _solve_newton(Ms, w, c, b, dense_max):
    """Solve H x = b with H = M^T M + blockdiag(c_j (I - w^_j w^_j^T)).

    Ms: list of (n, k_j); w: list of (k_j,); c: (a,) c_j = beta / ||w_j||; b: (K,)."""
    ks = [m.shape[1] for m in Ms]
    off = np.concatenate([[0], np.cumsum(ks)])
    K, n = off[-1], Ms[0].shape[0]
    what = [wj / np.linalg.norm(wj) for wj in w]
    if K <= max(n, dense_max):
        M = np.hstack(Ms)
        H = M.T @ M
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


def _newton_class(Ms, w, y, beta, max_newton, gtol, dense_max, drop_tol):
    """Newton on min 0.5||sum_j M_j w_j - y||^2 + beta sum_j ||w_j|| (one output column).

    Returns (w, dropped indices, steps, final max_j ||grad_j|| / beta)."""
    idx = list(range(len(Ms)))
    w = [wj.copy() for wj in w]
    dropped, steps, gmax = [], 0, np.inf

    def fval(ws, sel):
        r = sum(Ms[j] @ ws[j] for j in sel) - y if sel else -y
        return 0.5 * r @ r + beta * sum(np.linalg.norm(ws[j]) for j in sel), r

    while steps < max_newton and idx:
        f, r = fval(w, idx)
        norms = np.array([np.linalg.norm(w[j]) for j in idx])
        c = beta / norms
        g = [Ms[j].T @ r + cj * w[j] for j, cj in zip(idx, c)]
        gmax = max(np.linalg.norm(gj) for gj in g) / beta
        if gmax <= gtol:
            break
        b = -np.concatenate(g)
        dx = _solve_newton([Ms[j] for j in idx], [w[j] for j in idx], c, b, dense_max)
        ks = np.cumsum([0] + [Ms[j].shape[1] for j in idx])
        dw = {j: dx[ks[i]:ks[i + 1]] for i, j in enumerate(idx)}
        slope = -(b @ dx)
        alpha, accepted = 1.0, False
        for _ in range(40):
            wt = dict(enumerate(w))
            for j in idx:
                wt[j] = w[j] + alpha * dw[j]
            ft, _ = fval(wt, idx)
            if ft <= f + 1e-4 * alpha * slope + 1e-15 * abs(f):
                accepted = True
                break
            alpha *= 0.5
        steps += 1
        if not accepted:
            break
        for j in idx:
            w[j] = wt[j]
        nn = np.array([np.linalg.norm(w[j]) for j in idx])
        small = [j for j, v in zip(idx, nn) if v <= drop_tol * nn.max()]
        if small:
            for j in small:
                w[j] = np.zeros_like(w[j])
            dropped += small
            idx = [j for j in idx if j not in small]
    return w, dropped, steps, gmax


def polish(op, Y, beta, v, u=None, nu_mu=None, *, tight=None, max_newton=40, max_rounds=8, gtol=1e-13,
           tight_tol=1e-3, dense_max=5000, max_violation=1e-9, time_limit=None, verbose=False) -> PolishResult:
    """Polish an ADMM iterate by Newton on the reduced problem (module docstring).

    op : ``Operators`` (any cone_scale). Y : (n,) or (n, C). beta : group weight.
    v : (d, 2PC) sparse iterate; its nonzero groups are the initial active set.
    u : (d, 2PC) ADMM's u (the Newton start on the active groups; default v).
    nu_mu : (n, 2PC) unscaled cone multipliers guess, e.g. ``max(-rho nu, 0)``.
    tight : optional (n, 2PC) boolean initial tight rows (e.g. ADMM's ``s == 0``);
        default: rows with mu > 0 or ``G_j u_j <= tight_tol * max_i |G_j u_j|``.
    max_newton : Newton steps per round (per output column). max_rounds : active-set rounds.
    gtol : Newton stops when max_j ||reduced gradient_j|| <= gtol * beta.
    dense_max : largest dense Hessian (unknowns per output column) when the
        Woodbury form (n x n) is not smaller.
    max_violation : a polished point counts only if its relative cone violation is at most this.
    time_limit : seconds; no new round starts after it.

    Returns a ``PolishResult``; if no round certifies a smaller gap than the
    input (u, or v when u is None, with nu_mu), the input is returned with
    ``info["improved"] = False``.
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
    mu = np.zeros((n, ng)) if nu_mu is None else np.maximum(np.asarray(to_numpy(nu_mu), dtype=np.float64), 0.0)
    Sg = 2 * Dm - 1  # (n, P) signs
    meta = [_group_index(j, P, C) for j in range(ng)]

    obj_in, lb_in, viol_in = _certify(op1, u0, Y, beta, mu)
    best = dict(u=u0, mu=mu, objective=obj_in, dual_bound=lb_in, cone_violation=viol_in, round=-1)
    info = {"gap_in": obj_in - lb_in, "rel_gap_in": (obj_in - lb_in) / max(abs(obj_in), 1e-300), "rounds": [],
            "newton_steps": 0}

    # initial active set and tight rows
    active = set(np.flatnonzero(np.linalg.norm(v, axis=0) > 0).tolist())
    Gu0 = op1.signed(X @ u0)
    if tight is not None:
        T = np.asarray(to_numpy(tight), dtype=bool).copy()
    else:
        mmax = mu.max() if mu.size else 0.0
        T = (mu > 1e-9 * mmax) if mmax > 0 else np.zeros((n, ng), bool)
        T |= Gu0 <= tight_tol * np.abs(Gu0).max(axis=0, keepdims=True)
    start = u0.copy()

    def gap_of(o, lb):
        return o - lb

    for rnd in range(max_rounds):
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            info["stopped"] = "time_limit"
            break
        # null spaces and M_j for the active groups
        Ns, svds, Ms, ws = {}, {}, {}, {}
        for j in sorted(active):
            sgn, p, c = meta[j]
            rows = np.flatnonzero(T[:, j])
            S = Sg[rows, p][:, None] * X[rows]
            N, sv = _null_space(S, d)
            if N.shape[1] == 0:
                continue
            Ns[j], svds[j] = N, sv
            Ms[j] = sgn * (Dm[:, p][:, None] * (X @ N))
            ws[j] = N.T @ start[:, j]
            if not np.any(ws[j]):
                ws[j] = N.T @ (-sgn * X.T @ (Dm[:, p] * (0 - Y[:, c]))) * 1e-6
        active = set(Ns)
        # Newton per output column
        unew = np.zeros((d, ng))
        steps = 0
        dropped_all = []
        for c in range(C):
            grp = [j for j in sorted(active) if meta[j][2] == c]
            if not grp:
                continue
            wout, dropped, st, gm = _newton_class([Ms[j] for j in grp], [ws[j] for j in grp], Y[:, c], beta,
                                                 max_newton, gtol, dense_max, 1e-10)
            steps += st
            for i, j in enumerate(grp):
                if i in dropped:
                    dropped_all.append(j)
                else:
                    unew[:, j] = Ns[j] @ wout[i]
        info["newton_steps"] += steps
        for j in dropped_all:
            active.discard(j)
        r = op1.F(unew) - Y
        FTr = op1.FT(r)
        XU = X @ unew
        Gu = op1.signed(XU)
        mu_new = np.zeros((n, ng))
        changed = 0
        # multipliers of the active groups
        neg_removed = 0
        for j in sorted(active):
            rows = np.flatnonzero(T[:, j])
            if rows.size == 0:
                continue
            uj = unew[:, j]
            g = FTr[:, j] + beta * uj / np.linalg.norm(uj)
            Ur, sr, Vr = svds[j]
            m = Ur @ ((Vr.T @ g) / sr)
            if m.min() < 0 and rows.size > sr.size:
                S = Sg[rows, meta[j][1]][:, None] * X[rows]
                m2, _ = nnls(S.T, g, maxiter=20 * rows.size)
                if np.linalg.norm(S.T @ m2 - g) <= 1e-8 * max(np.linalg.norm(g), beta):
                    m = m2
            mu_new[rows, j] = np.maximum(m, 0)
            # rows with negative multipliers leave T_j
            scale = max(np.abs(m).max(), 1e-300)
            neg = np.flatnonzero(m < -1e-10 * scale)
            if neg.size:
                mu_new[rows[neg], j] = 0
                T[rows[neg], j] = False  # provisional: restored below if the primal also changes
                neg_removed += neg.size
                changed += neg.size
                info.setdefault("_neg", {})[j] = (rows, m)
        # primal feasibility of the non-tight rows
        added = 0
        for j in sorted(active):
            gj = Gu[:, j]
            tol = 1e-12 * max(np.abs(gj).max(), 1e-300)
            bad = (~T[:, j]) & (gj < -tol)
            if bad.any():
                T[bad, j] = True
                added += int(bad.sum())
        changed += added
        if added and neg_removed:
            # damp oscillation: when rows join, let only the most negative multiplier per group leave
            for j, (rows, m) in info.pop("_neg").items():
                neg = np.flatnonzero(m < -1e-10 * max(np.abs(m).max(), 1e-300))
                keep = neg[neg != np.argmin(m)]
                T[rows[keep], j] = True
        info.pop("_neg", None)
        # inactive groups: dual feasibility
        entered = []
        inactive = [j for j in range(ng) if j not in active]
        if inactive:
            Gmu = op1.GT(mu)
            for j in inactive:
                mj = mu[:, j].copy()
                q = FTr[:, j] - Gmu[:, j]
                if np.linalg.norm(q) <= beta * (1 - 1e-9):
                    mu_new[:, j] = mj
                    continue
                sgn, p, c = meta[j]
                Gt = (Sg[:, p][:, None] * X).T  # (d, n)
                m2, res = nnls(Gt, FTr[:, j], maxiter=50 * n)
                mu_new[:, j] = m2
                if res > beta * (1 + 1e-9):
                    qd = Gt @ m2 - FTr[:, j]  # feasible direction (G_j qd >= 0)
                    Fq = sgn * Dm[:, p] * (X @ qd)
                    tstar = max(0.0, -(r[:, c] @ Fq) - beta * np.linalg.norm(qd)) / max(Fq @ Fq, 1e-300)
                    if tstar > 0:
                        unew[:, j] = tstar * qd
                        T[:, j] = m2 > 0
                        active.add(j)
                        entered.append(j)
        changed += len(entered)
        obj, lb, viol = _certify(op1, unew, Y, beta, mu_new)
        rec = dict(round=rnd, active=len(active), tight=int(T[:, sorted(active)].sum()) if active else 0,
                   newton_steps=steps, added_rows=added, removed_rows=neg_removed, entered=len(entered),
                   dropped=len(dropped_all), objective=obj, dual_bound=lb, rel_gap=(obj - lb) / max(abs(obj), 1e-300),
                   cone_violation=viol, seconds=time.perf_counter() - t0)
        info["rounds"].append(rec)
        if verbose:
            print(rec)
        if viol <= max_violation and gap_of(obj, lb) < gap_of(best["objective"], best["dual_bound"]) \
                and gap_of(obj, lb) >= -1e-12 * abs(obj):
            best = dict(u=unew.copy(), mu=mu_new.copy(), objective=obj, dual_bound=lb, cone_violation=viol, round=rnd)
        if changed == 0:
            break
        start = unew
        mu = np.where(mu_new > 0, mu_new, mu)
    info["seconds"] = time.perf_counter() - t0
    info["improved"] = best["round"] >= 0
    info["best_round"] = best["round"]
    return PolishResult(best["u"], best["mu"], best["objective"], best["dual_bound"], best["cone_violation"], info)


__all__ = ["polish", "PolishResult"]
