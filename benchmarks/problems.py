"""The problems of the certification benchmarks (issue 11), built reproducibly.

Each ``make_<name>()`` returns ``(X, Y, D, beta)`` in float64 NumPy, X with its bias
column, ready for ``admmnn.solve``:

* ``fmnist``: Fashion-MNIST T-shirt (0) vs shirt (6), n = 1000, d = 784 + bias,
  standardised with train statistics, P = 10 Gaussian patterns, beta = 1e-3
  (needs ``apt-get install dataset-fashion-mnist``);
* ``correlated``: X = Z R + 0.01 noise with Z of rank 3, n = 150, d = 15 + bias,
  P = 10, beta = 1e-3 (the ill-conditioned class of the tests' oracle);
* ``tutorial``: the tutorial's main fit (digits, 10 classes one-hot, P = 10, beta = 1e-2);
* ``scnn``: scnn's synthetic ReLU teacher, n = 1000, d = 20, P = 100; scnn's
  lambda = 1e-3 on the mean loss is beta = 1 on the sum loss used here.
"""
from __future__ import annotations

import gzip
import os
import sys

import numpy as np

import admmnn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from oracle import small_problem  # noqa: E402  (the tests' oracle problems, correlated included)

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def make_fmnist(n=1000, P=10, beta=1e-3, classes=(0, 6), seed=0, subset=None):
    """``subset``: None for the first n rows of the classes, an integer for n random rows
    drawn with that seed (the gates keep ``seed``)."""
    X = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float64)
    y = read_idx(os.path.join(FMNIST, "train-labels-idx1-ubyte.gz"))
    keep = np.flatnonzero(np.isin(y, classes))
    keep = keep[:n] if subset is None else np.sort(np.random.default_rng(subset).choice(keep, n, replace=False))
    X, y = X[keep], np.where(y[keep] == classes[0], -1.0, 1.0)
    X = np.c_[(X - X.mean(0)) / (X.std(0) + 1e-8), np.ones(len(X))]
    D, _ = admmnn.gaussian_patterns(X, P, seed=seed)
    return X, y, D, beta


def make_correlated(seed=0):
    return small_problem("correlated", seed)


def make_tutorial(seed=0, P=10, beta=1e-2):
    from admmnn.experiments import report

    X, y, *_ = report.load_data("digits", n_train=890, n_val=360, n_test=540, seed=seed)
    X = np.c_[X, np.ones(len(X))]
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(float)
    D, _ = admmnn.gaussian_patterns(X, P, seed=seed)
    return X, Y, D, beta


def make_scnn(n=1000, d=20, P=100, seed=0, lam=1e-3, return_gates=False):
    """scnn's synthetic regression: Gaussian X, a planted two-layer ReLU teacher of
    width 100 plus noise, patterns from Gaussian gates; beta = lam * n (sum loss).
    With ``return_gates`` the gate vectors (d, P) come last (for scnn itself)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W1, w2 = rng.standard_normal((d, 100)), rng.standard_normal(100)
    y = np.maximum(X @ W1, 0) @ w2
    y = y / np.std(y) + 0.1 * rng.standard_normal(n)
    D, gates = admmnn.gaussian_patterns(X, P, seed=seed)
    return (X, y, D, lam * n, gates) if return_gates else (X, y, D, lam * n)


PROBLEMS = {"fmnist": make_fmnist, "fmnist-s1": lambda: make_fmnist(subset=1), "fmnist-s2": lambda: make_fmnist(subset=2), "correlated": make_correlated, "tutorial": make_tutorial, "scnn": make_scnn}


for _kind in ("binary", "multiclass", "regression"):
    PROBLEMS[_kind] = (lambda kind: (lambda seed=0: small_problem(kind, seed)))(_kind)
