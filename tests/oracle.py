"""The interior-point oracle: the same convex program solved by cvxpy + Clarabel."""
from __future__ import annotations

import numpy as np


def cvxpy_optimum(X, Y, D, beta, tight: bool = False):
    """Optimal value and groups (d, 2PC) of the sum-form program (one group per pattern and output column).
    ``tight``: Clarabel's gap and feasibility tolerances at 1e-11 instead of its default 1e-8."""
    import cvxpy as cp

    X, D = np.asarray(X, float), np.asarray(D, float)
    Y = np.asarray(Y, float).reshape(X.shape[0], -1)
    n, d = X.shape
    P, C = D.shape[1], Y.shape[1]
    V = cp.Variable((d, P * C))
    W = cp.Variable((d, P * C))
    pred = []
    cons = []
    for c in range(C):
        out = 0
        for p in range(P):
            j = p * C + c
            out = out + cp.multiply(D[:, p], X @ (V[:, j] - W[:, j]))
            S = (2 * D[:, p] - 1)[:, None] * X
            cons += [S @ V[:, j] >= 0, S @ W[:, j] >= 0]
        pred.append(out)
    loss = 0.5 * sum(cp.sum_squares(pred[c] - Y[:, c]) for c in range(C))
    reg = beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))
    prob = cp.Problem(cp.Minimize(loss + reg), cons)
    opts = dict(tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, tol_ktratio=1e-9) if tight else {}
    prob.solve(solver=cp.CLARABEL, **opts)
    # tight: Clarabel may call its answer "inaccurate" when it stops short of 1e-11 (it then holds to ~1e-10)
    assert prob.status == cp.OPTIMAL or (tight and prob.status == cp.OPTIMAL_INACCURATE), prob.status
    return prob.value, np.concatenate([V.value, W.value], axis=1)


def small_problem(kind: str, seed: int = 0):
    """Small problems (n <= 300, d <= 20, P <= 10): returns X, Y, D, beta."""
    from admmnn import gaussian_patterns

    rng = np.random.default_rng(seed)
    if kind == "binary":
        n, d, P = 120, 8, 8
        X = rng.standard_normal((n, d))
        X[:, -1] = 1.0
        Y = np.sign(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(n))
        beta = 0.05
    elif kind == "multiclass":
        n, d, P = 150, 6, 6
        X = rng.standard_normal((n, d))
        X[:, -1] = 1.0
        lab = np.argmax(X[:, :3] + 0.5 * rng.standard_normal((n, 3)), axis=1)
        Y = np.eye(3)[lab]
        beta = 0.1
    elif kind == "regression":
        n, d, P = 300, 20, 10
        X = rng.standard_normal((n, d)) / np.sqrt(d)
        X[:, -1] = 1.0
        Y = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0)
        Y = Y + 0.05 * rng.standard_normal(n)
        beta = 0.01
    elif kind == "correlated":
        # ill-conditioned: features from 3 latent factors plus 1% noise, small beta
        n, d, P = 150, 16, 10
        Z = rng.standard_normal((n, 3))
        X = Z @ rng.standard_normal((3, d)) + 0.01 * rng.standard_normal((n, d))
        X[:, -1] = 1.0
        Y = np.sign(Z[:, 0] - 0.5 * Z[:, 1] + 0.3 * rng.standard_normal(n))
        beta = 1e-3
    else:
        raise ValueError(kind)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, Y, D, beta
