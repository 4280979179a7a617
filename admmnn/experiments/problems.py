"""The benchmark problems, by name: every data set the benchmarks solve, built one way.

``problem(name, **options)`` (or ``PROBLEMS[name](**options)``) returns ``(X, Y, D, beta)``,
float64 NumPy arrays ready for ``admmnn.solve(X, Y, D, beta)``, X with its bias column last
(except ``scnn``, whose data have none, as in scnn); the same call returns the same arrays
(data subsets and patterns are seeded):

* ``fmnist``: Fashion-MNIST T-shirt/top (0) against shirt (6), the first n = 1000 training
  images of those classes, d = 784 + bias, P = 10 Gaussian patterns, beta = 1e-3;
  ``subset=k`` draws the n images at random with seed k instead (``fmnist-s1``,
  ``fmnist-s2``; the patterns keep ``seed``);
* ``correlated``: X = Z R + 1 % noise with Z of rank 3, n = 150, d = 15 + bias, P = 10,
  beta = 1e-3 (the ill-conditioned class of the tests' oracle problems);
* ``tutorial``: the tutorial's main fit (scikit-learn's digits, 10 classes one-hot,
  P = 10, beta = 1e-2);
* ``scnn``: scnn's synthetic ReLU teacher, n = 1000, d = 20, P = 100; scnn's lambda = 1e-3
  on the mean loss is beta = 1 on the sum loss used here (``return_gates`` adds the gates);
* ``cifar-shape``: a planted binary problem of CIFAR-10's shape, n = 10 000, d = 3072 + bias,
  P = 50 (no data files: for GPUs);
* ``planted``: a planted two-layer ReLU teacher with C outputs (n = 2000, d = 48 with the
  last column ones, P = 8, C = 2).

The conventions, decided here for every benchmark:

* data sets are read by ``admmnn.experiments.data.load_dataset`` (the loader of the
  notebooks: Fashion-MNIST from ``data/`` or the Debian package's
  ``/usr/share/datasets/fashion-mnist``); pixels are scaled to [0, 1], then standardised
  with the statistics of the training rows used (``data.standardize``: mean 0 and
  variance 1 per feature, a feature constant over those rows becomes 0); test rows get the
  same statistics;
* rows: the first ``n`` rows of a split (file order) among the chosen classes, or ``n`` rows
  drawn at random (seeded, kept in file order) with ``subset=``;
* two-class targets are -1/+1, the first class (of ``classes``) -1 and the second +1; a
  class may be a tuple of classes (one against the rest: ``classes=((1, 3, 5, 7, 8, 9),
  (0, 2, 4, 6))``);
* the bias column (ones) comes last; patterns are ``admmnn.gaussian_patterns(X, P, seed)``
  of the design with its bias.

``binary_design`` gives the train and test designs of a two-class data set for the
benchmarks that need a test split or other shapes; ``cvxpy_optimum`` solves a problem with
the interior-point oracle (cvxpy + Clarabel), the reference of the tests and benchmarks.
"""
from __future__ import annotations

import numpy as np

from ..patterns import gaussian_patterns
from . import report
from .data import load_dataset, standardize

FASHION_PAIR = (0, 6)  # T-shirt/top against shirt: the benchmarks' two-class Fashion-MNIST problem


# -- data sets ------------------------------------------------------------------------
def binary_design(dataset: str = "fashion-mnist", classes=FASHION_PAIR, n_train: int | None = None,
                  n_test: int | None = None, subset: int | None = None, root: str = "data"):
    """``(X_train, y_train, X_test, y_test)`` of a two-class problem of ``dataset``.

    classes : two entries, each a class id or a tuple of ids; the rows of the first get
        the target -1, those of the second +1.
    n_train, n_test : the first rows (file order) of each split among those classes;
        None for all, 0 for none.
    subset : an integer draws the ``n_train`` training rows at random with this seed
        instead (kept in file order).

    X is standardised with the statistics of the training rows returned, then gets a
    ones column (last); y is float64 -1/+1. Raises ``data.DatasetUnavailableError``
    where the data set is neither on disk nor downloadable.
    """
    if len(classes) != 2:
        raise ValueError(f"classes must have two entries (each a class or a tuple of classes), got {classes!r}")
    groups = [tuple(c) if isinstance(c, (tuple, list)) else (c,) for c in classes]
    ids = [c for g in groups for c in g]
    random = subset is not None and n_train is not None
    ds = load_dataset(dataset, classes=ids, standardize=False, root=root,
                      n_train=n_train if random else None, seed=subset if random else 0)
    Xtr, ytr, Xte, yte = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if not random:
        Xtr, ytr = Xtr[:n_train], ytr[:n_train]
    Xte, yte = Xte[:n_test], yte[:n_test]
    Xtr, Xte = standardize(Xtr, Xte)
    sign = lambda y: np.where(y < len(groups[0]), -1.0, 1.0)  # noqa: E731  (labels 0..k-1 in the order of ids)
    return with_bias(Xtr), sign(ytr), with_bias(Xte), sign(yte)


def with_bias(X: np.ndarray) -> np.ndarray:
    """``X`` (float64) with a ones column appended last."""
    return np.c_[np.asarray(X, dtype=np.float64), np.ones(len(X))]


# -- the named problems ---------------------------------------------------------------
def fmnist(n: int = 1000, P: int = 10, beta: float = 1e-3, classes=FASHION_PAIR, seed: int = 0,
           subset: int | None = None):
    """Fashion-MNIST two classes: the first n training rows, or n random ones with ``subset``."""
    X, y, _, _ = binary_design("fashion-mnist", classes, n_train=n, n_test=0, subset=subset)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, y, D, beta


def correlated(seed: int = 0):
    """Ill-conditioned: features from 3 latent factors plus 1 % noise, small beta."""
    rng = np.random.default_rng(seed)
    n, d, P = 150, 16, 10
    Z = rng.standard_normal((n, 3))
    X = Z @ rng.standard_normal((3, d)) + 0.01 * rng.standard_normal((n, d))
    X[:, -1] = 1.0
    Y = np.sign(Z[:, 0] - 0.5 * Z[:, 1] + 0.3 * rng.standard_normal(n))
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, Y, D, 1e-3


def oracle_problem(kind: str, seed: int = 0):
    """The oracle problems of the tests (n <= 300, d <= 20, P <= 10): "binary", "multiclass",
    "regression" or "correlated"; returns X, Y, D, beta."""
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


def tutorial(seed: int = 0, P: int = 10, beta: float = 1e-2):
    """The tutorial's main fit: digits through ``report.load_data``, one-hot targets."""
    X, y, *_ = report.load_data("digits", n_train=890, n_val=360, n_test=540, seed=seed)
    X = with_bias(X)
    Y = (y[:, None] == np.unique(y)[None, :]).astype(float)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, Y, D, beta


def scnn(n: int = 1000, d: int = 20, P: int = 100, seed: int = 0, lam: float = 1e-3, return_gates: bool = False):
    """scnn's synthetic regression: Gaussian X, a planted two-layer ReLU teacher of width
    100 plus noise, patterns from Gaussian gates; beta = lam * n (sum loss). With
    ``return_gates`` the gate vectors (d, P) come last (for scnn itself)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W1, w2 = rng.standard_normal((d, 100)), rng.standard_normal(100)
    y = np.maximum(X @ W1, 0) @ w2
    y = y / np.std(y) + 0.1 * rng.standard_normal(n)
    D, gates = gaussian_patterns(X, P, seed=seed)
    return (X, y, D, lam * n, gates) if return_gates else (X, y, D, lam * n)


def cifar_shape(n: int = 10_000, P: int = 50, beta: float = 1e-3, d: int = 3072, seed: int = 0):
    """A planted binary problem of CIFAR-10's shape: Gaussian X, the sign of a difference
    of two ReLUs as target."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0) + 1e-9)
    X = with_bias(X)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, y, D, beta


def planted(n: int = 2000, d: int = 48, P: int = 8, C: int = 2, beta: float = 1e-2, seed: int = 0):
    """A planted two-layer ReLU teacher of width 8 with C outputs; the last column of X is ones."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    Y = np.maximum(X @ rng.standard_normal((d, 8)), 0) @ rng.standard_normal((8, C))
    D, _ = gaussian_patterns(X, n_patterns=P, seed=seed)
    return X, Y, D, beta


PROBLEMS = {
    "fmnist": fmnist,
    "fmnist-s1": lambda **kw: fmnist(subset=1, **kw),
    "fmnist-s2": lambda **kw: fmnist(subset=2, **kw),
    "correlated": correlated,
    "tutorial": tutorial,
    "scnn": scnn,
    "cifar-shape": cifar_shape,
    "planted": planted,
}


def problem(name: str, **options):
    """``(X, Y, D, beta)`` of the problem ``name`` (a key of ``PROBLEMS``)."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}")
    return PROBLEMS[name](**options)


# -- the reference optimum ------------------------------------------------------------------
def cvxpy_optimum(X, Y, D, beta, tight: bool = False):
    """Optimal value and groups (d, 2PC) of the sum-form program (one group per pattern and
    output column), by cvxpy + Clarabel. ``tight``: Clarabel's gap and feasibility
    tolerances at 1e-11 instead of its default 1e-8."""
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
    if not (prob.status == cp.OPTIMAL or (tight and prob.status == cp.OPTIMAL_INACCURATE)):
        raise RuntimeError(f"cvxpy + Clarabel ended with status {prob.status!r}")
    return prob.value, np.concatenate([V.value, W.value], axis=1)


__all__ = ["PROBLEMS", "problem", "binary_design", "with_bias", "fmnist", "correlated", "tutorial", "scnn",
           "cifar_shape", "planted", "cvxpy_optimum", "FASHION_PAIR"]
