"""solve(..., solver="exact") reaches the interior-point optimum (cvxpy + Clarabel)."""
import numpy as np
import pytest

import admmnn
from admmnn.operators import Operators
from oracle import cvxpy_optimum, small_problem

KINDS = ["binary", "multiclass", "regression"]


@pytest.fixture(scope="module", params=KINDS)
def problem(request):
    X, Y, D, beta = small_problem(request.param)
    pstar, _ = cvxpy_optimum(X, Y, D, beta)
    return X, Y, D, beta, pstar


def test_exact_reaches_oracle(problem):
    X, Y, D, beta, pstar = problem
    res = admmnn.solve(X, Y, D, beta, solver="exact", tol=1e-6, max_iter=30000)
    assert res.status == "optimal"
    assert abs(res.objective - pstar) / pstar <= 1e-5
    assert res.gap / res.objective <= 1e-4
    assert res.dual_bound <= pstar * (1 + 1e-8)
    op = Operators(X, D, np.asarray(Y).reshape(len(Y), -1).shape[1])
    g = op.G(res.v)
    assert np.linalg.norm(np.minimum(g, 0)) / np.linalg.norm(g) <= 1e-6


def test_dual_bound_is_a_lower_bound_at_every_check(problem):
    X, Y, D, beta, pstar = problem
    res = admmnn.solve(X, Y, D, beta, max_iter=300, tol=1e-12)
    assert np.all(res.history["dual_bound"] <= pstar * (1 + 1e-8))


def test_network_matches_convex_model(problem):
    X, Y, D, beta, _ = problem
    res = admmnn.solve(X, Y, D, beta, tol=1e-6, max_iter=20000)
    Y2 = np.asarray(Y).reshape(len(Y), -1)
    op = Operators(X, D, Y2.shape[1])
    convex = op.F(res.v)
    net = res.network.predict(X)
    assert np.linalg.norm(net - convex) <= 1e-4 * np.linalg.norm(convex)
    # the network's weight decay equals the group penalty
    assert np.isclose(res.network.penalty(beta), beta * op.group_norms(res.v).sum())


def test_rows_in_no_pattern_enter_the_bound_exactly():
    """Rows of X that no pattern activates are fitted by 0; the bound counts them exactly."""
    X, Y, D, beta = small_problem("binary")
    D = D.copy()
    D[:6] = 0.0
    pstar, _ = cvxpy_optimum(X, Y, D, beta)
    assert pstar < 0.5 * np.sum(Y**2) - 1  # a non-trivial optimum
    res = admmnn.solve(X, Y, D, beta, tol=1e-6, max_iter=30000)
    assert res.status == "optimal"
    assert np.all(res.history["dual_bound"] <= pstar * (1 + 1e-8))
    assert abs(res.objective - pstar) / pstar <= 1e-5


ALL_SOLVERS = ["exact", "cg", "pcg-jacobi", "pcg-nystrom", "pcg-nystrom-block", "rbcd", "rbcd-nystrom"]


@pytest.fixture(scope="module")
def correlated():
    X, Y, D, beta = small_problem("correlated")
    return X, Y, D, beta, cvxpy_optimum(X, Y, D, beta, tight=True)[0]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_every_solver_reaches_the_optimum_on_correlated_features(correlated, solver):
    """Ill-conditioned features (rank-3 factors plus 1% noise) at beta = 1e-3: the Clarabel
    optimum to 1e-5 with a certified gap <= 1e-4, within the default max_iter."""
    X, Y, D, beta, pstar = correlated
    assert np.linalg.cond(X) > 1e2
    res = admmnn.solve(X, Y, D, beta, solver=solver, tol=1e-4)
    assert res.status == "optimal"
    assert abs(res.objective - pstar) / pstar <= 1e-5
    assert res.rel_gap <= 1e-4
    assert res.dual_bound <= pstar * (1 + 1e-8)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_dual_bound_never_exceeds_the_optimum(correlated, solver, dtype):
    """At every check of every solver, in both dtypes, with and without the endgame. In float32
    the data are rounded, which moves the optimum of this ill-conditioned problem: the bound is
    compared with the optimum of the rounded data."""
    X, Y, D, beta, pstar = correlated
    args = [np.asarray(a, dtype) for a in (X, Y, D)]
    if dtype == "float32":
        pstar = cvxpy_optimum(*(np.asarray(a, np.float64) for a in args), beta, tight=True)[0]
    for polish in (True, False):
        res = admmnn.solve(*args, beta, solver=solver, max_iter=400, tol=1e-12, polish=polish)
        assert np.all(res.history["dual_bound"] <= pstar * (1 + 1e-8)), (polish, res.history["dual_bound"].max(), pstar)
