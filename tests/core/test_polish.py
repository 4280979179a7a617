"""The active-set polish (admmnn.polish) against the interior-point oracle."""
import numpy as np
import pytest

import admmnn
from admmnn.operators import Operators
from admmnn.polish import _solve_newton, polish
from oracle import cvxpy_optimum, small_problem

# ADMM iterations before the polish: the library's defaults leave these iterates
# rough (relative gaps 1e-2 .. 6e-1 and cone violations up to 7e-2 at 300)
ITERS = {"binary": 300, "multiclass": 300, "regression": 300, "correlated": 300}


@pytest.fixture(scope="module", params=sorted(ITERS))
def polished(request):
    kind = request.param
    X, Y, D, beta = small_problem(kind)
    p_star, _ = cvxpy_optimum(X, Y, D, beta)
    res = admmnn.solve(X, Y, D, beta, max_iter=ITERS[kind], tol=1e-12)
    st = res.state
    op = Operators(X, D, Y.reshape(len(Y), -1).shape[1], cone_scale=0.5)  # any cone_scale: polish unscales it
    mu = np.maximum(-res.rho * np.asarray(st.nu), 0)
    pr = polish(op, Y, beta, st.v, st.u, mu)
    return kind, p_star, res, pr


def test_polish_bound_is_valid_and_tight(polished):
    kind, p_star, res, pr = polished
    assert pr.info["improved"] and pr.info["kkt"], pr.info
    # a certified lower bound: never above the optimum. cvxpy + Clarabel at its default
    # tolerances is itself only accurate to ~1e-8: on "regression" its value lies 7.4e-9
    # (relative) below our certified bound, whose primal point is feasible to 1e-16
    assert pr.dual_bound <= p_star * (1 + 2e-8) + 1e-12
    assert abs(pr.objective - p_star) <= 1e-6 * abs(p_star)
    assert pr.cone_violation <= 1e-12
    assert pr.mu.min() >= 0
    # at least 100x below ADMM's certified gap at the same iterate (|gap|: ADMM's can be
    # negative while its v violates the cone)
    assert pr.rel_gap >= -1e-12
    assert pr.rel_gap <= abs(res.rel_gap) / 100
    assert pr.rel_gap <= 1e-8


def test_polish_groups_are_feasible(polished):
    kind, p_star, res, pr = polished
    X, Y, D, beta = small_problem(kind)
    op = Operators(X, D, Y.reshape(len(Y), -1).shape[1])
    Gu = op.signed(X @ pr.u)
    scale = np.abs(Gu).max()
    assert Gu.min() >= -1e-12 * scale
    # complementarity: multipliers only on tight rows
    assert np.all(np.abs(Gu[pr.mu > 0]) <= 1e-10 * scale)


@pytest.mark.parametrize("n", [30, 8])  # dense Hessian (K <= n) and Woodbury (K > n)
def test_newton_solve_matches_dense_hessian(n):
    rng = np.random.default_rng(n)
    ks = [4, 5, 3]
    Ms = [rng.standard_normal((n, k)) for k in ks]
    w = [rng.standard_normal(k) for k in ks]
    beta = 0.5
    c = np.array([beta / np.linalg.norm(x) for x in w])
    H = np.hstack(Ms).T @ np.hstack(Ms)
    off = np.cumsum([0] + ks)
    for j, x in enumerate(w):
        xh = x / np.linalg.norm(x)
        H[off[j]:off[j + 1], off[j]:off[j + 1]] += c[j] * (np.eye(ks[j]) - np.outer(xh, xh))
    b = rng.standard_normal(sum(ks))
    x = _solve_newton(Ms, w, c, b, dense_max=0)
    np.testing.assert_allclose(H @ x, b, rtol=1e-8, atol=1e-8 * np.abs(b).max())


def test_polish_keeps_input_when_it_cannot_improve():
    X, Y, D, beta = small_problem("binary")
    op = Operators(X, D, 1)
    u = np.zeros((X.shape[1], op.n_groups))
    pr = polish(op, Y, beta, u, u, None, max_steps=0)
    assert not pr.info["improved"]
    assert np.array_equal(pr.u, u)
