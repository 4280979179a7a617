"""The interior-point oracle (the same convex program solved by cvxpy + Clarabel) and the
tests' small problems; ``cvxpy_optimum`` and the ``correlated`` problem live in the benchmark
registry (``admmnn.experiments.problems``), shared with the benchmarks."""
from __future__ import annotations

import numpy as np

from admmnn.experiments.problems import correlated, cvxpy_optimum  # noqa: F401  (re-exported for the tests)


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
        return correlated(seed)
    else:
        raise ValueError(kind)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, Y, D, beta
