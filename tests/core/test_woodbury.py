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


def dense_solve(X, D, C, rho, cone_scale, b):
    """u with A u = b for A = I + F^T F / rho + sigma^2 G^T G, built densely."""
    d = X.shape[1]
    F, G = dense_F_G(X, D, C)
    A = np.eye(F.shape[1]) + F.T @ F / rho + cone_scale**2 * (G.T @ G)
    k = b.shape[1]
    return np.linalg.solve(A, b.T.reshape(-1)).reshape(k, d).T


@pytest.mark.parametrize("factor", ["cholesky", "eigh"])
def test_exact_after_penalty_changes(factor):
    """With cone_scale != 1 and several rho changes (new ones and a return to a
    cached one), the exact solve agrees with a dense solve to 1e-10."""
    rng = np.random.default_rng(7)
    n, d, P, C, sigma = 50, 6, 5, 2, 0.3
    X = rng.standard_normal((n, d))
    D, _ = gaussian_patterns(X, P, seed=3)
    op = Operators(X, D, C, cone_scale=sigma)
    b = rng.standard_normal((d, op.n_groups))
    solver = ExactSolver(op, 1.0, factor=factor, cache_size=2)
    for rho in [1.0, 0.05, 4.0, 0.05, 1e-3, 1.0, 30.0]:
        solver = solver.with_rho(rho)
        assert solver.rho == rho
        u = solver.solve(b)
        u_dense = dense_solve(X, D, C, rho, sigma, b)
        assert np.linalg.norm(u - u_dense) / np.linalg.norm(u_dense) < 1e-10, rho
        Au = apply_A(op, op.gram(), u, rho)
        assert np.linalg.norm(Au - b) / np.linalg.norm(b) < 1e-10
    if factor == "cholesky":  # 0.05 came back from the cache; 1.0 had been evicted
        assert solver.info["n_factorizations"] == 6


def test_exact_float32():
    rng = np.random.default_rng(8)
    n, d, P, C, sigma = 50, 6, 5, 1, 0.3
    X = rng.standard_normal((n, d))
    D, _ = gaussian_patterns(X, P, seed=3)
    op32 = Operators(X.astype(np.float32), D.astype(np.float32), C, cone_scale=sigma)
    b = rng.standard_normal((d, op32.n_groups))
    solver = ExactSolver(op32, 1.0)
    for rho in [1.0, 0.1, 3.0]:
        solver = solver.with_rho(rho)
        u = solver.solve(b.astype(np.float32))
        assert u.dtype == np.float32
        u_dense = dense_solve(X, D, C, rho, sigma, b)
        assert np.linalg.norm(u - u_dense) / np.linalg.norm(u_dense) < 1e-4, rho


def test_exact_factor_option():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    D, _ = gaussian_patterns(X, 3, seed=0)
    with pytest.raises(ValueError):
        ExactSolver(Operators(X, D, 1), 1.0, factor="lu")


def test_blocked_cholesky_matches_lapack():
    # the large-n path of cho_factor_shifted (OpenBLAS' own potrf crashes at n = 20000),
    # checked at small n with small blocks, one block that does not divide n included
    from admmnn import _backend

    rng = np.random.default_rng(3)
    A = rng.standard_normal((203, 220))
    M = A @ A.T + np.eye(203)
    L = np.tril(_backend._blocked_cholesky(M.copy(), block=64))
    np.testing.assert_allclose(L, np.linalg.cholesky(M), rtol=1e-10, atol=1e-12)
    b = rng.standard_normal((203, 2))
    np.testing.assert_allclose(M @ _backend.cho_solve(_backend._blocked_cholesky(M.copy(), block=64), b), b, atol=1e-9)
    with pytest.raises(np.linalg.LinAlgError):
        _backend._blocked_cholesky(M - 1e3 * np.eye(203), block=64)
