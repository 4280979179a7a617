"""The exact u-step equals a dense solve of A u = b."""
import numpy as np
import pytest

from admmnn import gaussian_patterns
from admmnn.operators import Operators
from admmnn.ustep import ExactSolver, apply_A


def dense_F_G(X, D, C):
    """Reference F (n*C, d*2PC) and G (n*2PC, d*2PC), built densely for the test only."""
    n, d = X.shape
    P = D.shape[1]
    k = 2 * P * C
    F = np.zeros((n * C, d * k))
    G = np.zeros((n * k, d * k))
    for h in range(2):
        for p in range(P):
            for c in range(C):
                j = h * P * C + p * C + c
                sign = 1.0 if h == 0 else -1.0
                F[c * n:(c + 1) * n, j * d:(j + 1) * d] = sign * D[:, [p]] * X
                G[j * n:(j + 1) * n, j * d:(j + 1) * d] = (2 * D[:, [p]] - 1) * X
    return F, G


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("rho", [0.01, 1.0])
def test_exact_matches_dense_solve(C, rho):
    rng = np.random.default_rng(C)
    n, d, P = 40, 5, 4
    X = rng.standard_normal((n, d))
    D, _ = gaussian_patterns(X, P, seed=1)
    op = Operators(X, D, C)
    F, G = dense_F_G(X, D, C)
    A = np.eye(F.shape[1]) + F.T @ F / rho + G.T @ G
    b = rng.standard_normal((d, op.n_groups))
    # u (d, k) <-> vec column-major by group: group j occupies rows j*d:(j+1)*d
    u_dense = np.linalg.solve(A, b.T.reshape(-1)).reshape(op.n_groups, d).T
    solver = ExactSolver(op, 1.0).with_rho(rho)
    u = solver.solve(b)
    assert np.linalg.norm(u - u_dense) / np.linalg.norm(u_dense) < 1e-10
    # the matrix-free operator agrees with the dense A as well
    Au = apply_A(op, solver.XtX, u, rho)
    assert np.linalg.norm(Au - b) / np.linalg.norm(b) < 1e-10


def test_operators_match_dense():
    rng = np.random.default_rng(0)
    n, d, P, C = 30, 4, 3, 2
    X = rng.standard_normal((n, d))
    D, _ = gaussian_patterns(X, P, seed=0)
    op = Operators(X, D, C)
    F, G = dense_F_G(X, D, C)
    u = rng.standard_normal((d, op.n_groups))
    vec = u.T.reshape(-1)
    assert np.allclose(op.F(u).T.reshape(-1), F @ vec)
    assert np.allclose(op.G(u).T.reshape(-1), G @ vec)
    r = rng.standard_normal((n, C))
    assert np.allclose(op.FT(r).T.reshape(-1), F.T @ r.T.reshape(-1))
    s = rng.standard_normal((n, op.n_groups))
    assert np.allclose(op.GT(s).T.reshape(-1), G.T @ s.T.reshape(-1))
