"""Class labels as regression targets, and network outputs back to labels.

The one encoder of admmnn, used by the classifier, the comparison command line and
the notebooks: two classes become one column of -1/+1 (+1 for ``classes[1]``), C > 2
classes C one-hot columns (one-vs-all output neurons).
"""
from __future__ import annotations

import numpy as np


def unique_labels(y) -> tuple[np.ndarray, np.ndarray]:
    """(classes, index): the sorted distinct labels of ``y`` (n,) and each row's
    position among them; TypeError naming the types for labels that cannot be compared."""
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise TypeError(f"y mixes labels of types that cannot be compared ({kinds}); use labels of one type") from None


def encode(y, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """(T, classes): float64 targets T, (n, 1) +-1 for two classes or (n, C) one-hot,
    for labels ``y`` (n,). ``classes``: the label set (sorted; default: those of y);
    a label outside it raises ValueError."""
    y = np.asarray(y)
    if classes is None:
        classes, idx = unique_labels(y)
    else:
        classes = np.asarray(classes)
        idx = np.searchsorted(classes, y)
        if not np.array_equal(classes[np.minimum(idx, classes.size - 1)], y):
            raise ValueError(f"y has labels outside classes = {classes.tolist()[:10]}")
    if classes.size == 2:
        return (2.0 * idx - 1.0)[:, None], classes
    return np.eye(classes.size)[idx], classes


def decode(scores, classes) -> np.ndarray:
    """Labels (n,) from NumPy network outputs ``scores``: (n,) or (n, 1) for two
    classes (positive means ``classes[1]``), else (n, C) (the largest wins)."""
    s = np.asarray(scores)
    if classes.size == 2:
        return classes[(s.reshape(s.shape[0]) > 0).astype(int)]
    return classes[np.argmax(s, axis=1)]


__all__ = ["encode", "decode", "unique_labels"]
