"""The endgame (admmnn.endgame, semismooth Newton on the augmented Lagrangian) against the
interior-point oracle, its Newton systems against a dense solve, and what a solve keeps when
the endgame fails or is interrupted."""
import numpy as np
import pytest

import admmnn
from admmnn import admm, certificate, endgame
from admmnn._backend import asarray, to_numpy
from admmnn.divergence import InterruptedSolveWarning
from admmnn.endgame import ssnal
from admmnn.operators import Operators
from oracle import cvxpy_optimum, small_problem

KINDS = ["binary", "multiclass", "regression", "correlated"]
BACKENDS = ["numpy", "torch", "jax"]


@pytest.fixture(scope="module", params=KINDS)
def oracle(request):
    X, Y, D, beta = small_problem(request.param)
    pstar, _ = cvxpy_optimum(X, Y, D, beta, tight=True)
    return request.param, (X, Y, D, beta), pstar


@pytest.mark.parametrize("backend", BACKENDS)
def test_endgame_reaches_the_clarabel_optimum_to_1e_8(oracle, backend):
    kind, (X, Y, D, beta), pstar = oracle
    res = admmnn.solve(*(asarray(a, backend, "float64") for a in (X, Y, D)), beta, tol=1e-8)
    assert res.status == "optimal", (kind, res.status, res.rel_gap)
    assert 0 <= res.gap <= 1e-8 * res.objective
    assert res.dual_bound <= pstar * (1 + 1e-10)  # a valid bound (Clarabel at 1e-12)
    assert abs(res.objective - pstar) <= 2e-8 * pstar
    assert res.info["endgame_tries"] and res.info["endgame_tries"][-1]["reason"] == "certified"
    # the returned point itself has this objective and satisfies the cones to tol
    Y2 = np.asarray(Y).reshape(len(Y), -1)
    obj, viol = certificate.objective(Operators(X, D, Y2.shape[1]), to_numpy(res.v), Y2, beta)
    assert obj == pytest.approx(res.objective, rel=1e-12) and viol <= 1e-8


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_inputs_certify_to_1e_4(oracle, backend):
    kind, (X, Y, D, beta), _ = oracle
    X32, Y32, D32 = (np.asarray(a, np.float32) for a in (X, Y, D))
    pstar32, _ = cvxpy_optimum(*(a.astype(np.float64) for a in (X32, Y32, D32)), beta, tight=True)
    res = admmnn.solve(*(asarray(a, backend, "float32") for a in (X, Y, D)), beta, tol=1e-4)
    assert str(res.v.dtype).endswith("float32")
    assert res.status == "optimal", (kind, res.status, res.rel_gap)
    assert 0 <= res.gap <= 1e-4 * res.objective
    assert res.dual_bound <= pstar32 * (1 + 1e-10)


def dense_newton_matrix(X, D, C, B, active, tau):
    """The 2 P d x 2 P d Newton matrix of column c = 0..C-1, built densely (tests only)."""
    n, d = X.shape
    P = D.shape[1]
    out = []
    for c in range(C):
        F = np.concatenate([D[:, p:p + 1] * X for p in range(P)] + [-D[:, p:p + 1] * X for p in range(P)], axis=1)
        H = F.T @ F
        for h in range(2):
            for p in range(P):
                j = h * P * C + p * C + c
                G = (2 * D[:, p:p + 1] - 1) * X
                blk = slice((h * P + p) * d, (h * P + p + 1) * d)
                H[blk, blk] += B[j] + tau * G.T @ (active[:, j:j + 1] * G)
        out.append(H)
    return out


@pytest.mark.parametrize("system", ["dense", "woodbury-cg"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["multiclass", "correlated"])
def test_reduced_newton_system_agrees_with_a_dense_solve(kind, backend, system, monkeypatch):
    """Both ways of solving the reduced P d system (parallel sum of the two signs; dense
    Cholesky, or CG preconditioned by Woodbury through n) give the same direction as the full
    2 P d system (backward error 1e-10), on the prox Jacobians and cone rows of a
    real ADMM iterate (without the safeguard ridge, which perturbs it at 1e-11)."""
    monkeypatch.setattr(endgame.system, "RIDGE", 0.0)
    X, Y, D, beta = small_problem(kind)
    Y2 = np.asarray(Y, float).reshape(len(Y), -1)
    res = admmnn.solve(X, Y, D, beta, max_iter=60, tol=1e-12, polish=False)
    sc = np.sqrt(res.info["rho_ratio"])
    op = Operators(*(asarray(a, backend) for a in (X, D)), Y2.shape[1], sc)
    st = endgame.start_state(op, admm.ADMMState(*(asarray(a, backend) for a in admm.rescale_cone(res.state, sc))), res.rho)
    prob = ssnal.Problem(op, asarray(Y2, backend), beta)
    R, x, g = prob.pieces(st)
    grad, norms = prob.gradient(st, R, x, g)
    B = prob.prox_jacobians(st, x, norms)
    active = op.xp.astype(g < 0, x.dtype)
    on = op.xp.astype(norms > beta / st.sigma, x.dtype)
    radial = x * (on / op.xp.where(norms > 0, norms, 1.0))[None, :]
    du = to_numpy(endgame.system_for(op, prob.C, kind=system).solve(B, active, st.tau, -grad, radial))
    C, P, d = prob.C, prob.P, prob.d
    Hs = dense_newton_matrix(X, D, C, to_numpy(B), to_numpy(active), st.tau)
    g_np = to_numpy(grad)
    for c in range(C):
        cols = [h * P * C + p * C + c for h in range(2) for p in range(P)]
        x, b = du[:, cols].T.reshape(-1), -g_np[:, cols].T.reshape(-1)
        # backward error of the reduced solve in the full system (a forward comparison would
        # measure the condition number of the correlated problem, not the algebra)
        resid = np.linalg.norm(Hs[c] @ x - b)
        assert resid <= 1e-10 * (np.linalg.norm(Hs[c], 2) * np.linalg.norm(x) + np.linalg.norm(b)), resid
        ref = np.linalg.solve(Hs[c], b)
        assert np.linalg.norm(x - ref) <= 1e-6 * np.linalg.norm(ref)


def test_a_failed_endgame_keeps_the_admm_point(monkeypatch):
    """An endgame that finds nothing better leaves ADMM's best point and bound untouched."""
    X, Y, D, beta = small_problem("regression")
    kw = dict(max_iter=150, tol=1e-10)
    plain = admmnn.solve(X, Y, D, beta, polish=False, **kw)
    monkeypatch.setattr(ssnal, "inner", lambda prob, system, st, eps, steps, deadline=None: (st._replace(
        u=st.u * np.nan), 1, False))
    failed = admmnn.solve(X, Y, D, beta, **kw)
    assert failed.info["endgame_tries"][0]["reason"] == "not finite"
    np.testing.assert_array_equal(failed.v, plain.v)
    assert (failed.objective, failed.dual_bound, failed.n_iter) == (plain.objective, plain.dual_bound, plain.n_iter)


def test_an_interrupted_endgame_keeps_the_admm_point(monkeypatch):
    X, Y, D, beta = small_problem("binary")
    plain = admmnn.solve(X, Y, D, beta, polish=False, max_iter=100, tol=1e-10)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(endgame, "run", interrupt)
    with pytest.warns(InterruptedSolveWarning):
        res = admmnn.solve(X, Y, D, beta, max_iter=300, tol=1e-10)
    assert res.status == "interrupted" and res.n_iter == plain.n_iter
    np.testing.assert_array_equal(res.v, plain.v)


def test_resume_is_bit_identical_with_the_endgame(tmp_path):
    """Checkpoints store the best point, the best bound and the endgame schedule."""
    X, Y, D, beta = small_problem("multiclass")
    kw = dict(tol=1e-9, check_every=10)
    full = admmnn.solve(X, Y, D, beta, max_iter=400, **kw)
    assert full.status == "optimal" and full.info["endgame_tries"]
    path = tmp_path / "run.npz"
    admmnn.solve(X, Y, D, beta, max_iter=50, checkpoint=path, checkpoint_every=20, **kw)
    rest = admmnn.solve(X, Y, D, beta, max_iter=400, resume=path, **kw)
    np.testing.assert_array_equal(full.v, rest.v)
    assert (full.objective, full.dual_bound, full.n_iter, full.status) == (rest.objective, rest.dual_bound,
                                                                            rest.n_iter, rest.status)


def test_the_bound_reported_is_the_best_of_the_run():
    X, Y, D, beta = small_problem("correlated")
    res = admmnn.solve(X, Y, D, beta, max_iter=300, tol=1e-12, polish=False)
    h = res.history
    assert np.all(np.diff(h["best_bound"]) >= 0)
    assert h["best_bound"][-1] == pytest.approx(h["dual_bound"].max(), rel=0, abs=0)
    assert res.dual_bound == h["dual_bound"].max() or res.status == "optimal"


def test_a_negative_gap_never_certifies():
    """A point below a valid bound beats it only by violating the cones: not optimal."""
    assert not certificate.certifies(1.0, 1.0 + 1e-6, 1e-9, 1e-4)
    assert certificate.certifies(1.0, 1.0 + 1e-13, 1e-9, 1e-4)
    assert certificate.certifies(1.0, 1.0 - 1e-5, 1e-5, 1e-4) and not certificate.certifies(1.0, 1 - 1e-5, 2e-4, 1e-4)
