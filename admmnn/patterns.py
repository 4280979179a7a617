"""Sampled ReLU activation patterns ``D = 1[X h >= 0]``.

Two samplers share one convention: they return ``D`` (n, P) float64 0/1 with
distinct, non-empty columns, and ``H`` (d, P), the gate vectors that produced
them (``D == (X @ H >= 0)``), so patterns for new data are ``X_new @ H >= 0``.

* ``gaussian_patterns``: dense standard-normal gates.
* ``conv_patterns``: random k x k filters (over all channels) placed at random
  positions of the image, i.e. gates supported on one image patch.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._backend import to_numpy
from .validation import check_choice, check_positive

PATTERN_KINDS = ("gaussian", "conv")


def sample_patterns(kind: str, X, n_patterns: int, seed=0, image_shape=None, kernel: int = 3):
    """``gaussian_patterns`` or ``conv_patterns`` by name (``kind`` in ``PATTERN_KINDS``);
    "conv" needs ``image_shape``."""
    check_choice("patterns", kind, PATTERN_KINDS)
    if kind == "gaussian":
        return gaussian_patterns(X, n_patterns, seed=seed)
    if image_shape is None:
        raise ValueError("patterns='conv' needs image_shape=(C, H, W), the shape of one image row of X")
    return conv_patterns(X, n_patterns, image_shape, kernel=kernel, seed=seed)


def gaussian_patterns(X, n_patterns: int, seed=0, max_draws: int | None = None):
    """Distinct, non-empty activation patterns from Gaussian gate vectors.

    Parameters
    ----------
    X : array of shape (n, d)
        Any backend (read on the host, in float64).
    n_patterns : int
        Number P of distinct patterns wanted.
    seed : int or numpy Generator
        The same seed gives the same patterns on every backend, because gates are
        drawn and applied on the host.
    max_draws : int or None
        Total gate vectors tried before giving up (default 20 P + 100).

    Returns
    -------
    D : float64 NumPy array of shape (n, P')
        0/1, ``P' <= P`` distinct non-zero columns.
    H : float64 NumPy array of shape (d, P')
        The gate vectors that produced them.

    Warns
    -----
    UserWarning
        When fewer than P distinct patterns were found.
    """
    Xh = np.asarray(to_numpy(X), dtype=np.float64)
    d = Xh.shape[1]
    rng = np.random.default_rng(seed)
    return _distinct_patterns(Xh, n_patterns, lambda b: rng.standard_normal((d, b)), max_draws, "Gaussian")


def conv_patterns(X, n_patterns: int, image_shape, kernel: int = 3, seed=0, max_draws: int | None = None):
    """Distinct, non-empty activation patterns from convolutional gates.

    Each gate is a random ``kernel x kernel`` filter over all ``C`` channels
    (standard normal weights) placed at a random position of the image grid:
    ``h`` is zero except on that patch. Rows of ``X`` are images flattened
    channel-major from ``image_shape = (C, H, W)``; a trailing extra column
    (the ones column of a bias) gets a standard normal gate weight as well.

    Parameters and returns as ``gaussian_patterns``; ``image_shape`` is (C, H, W)
    (or (H, W) for one channel) and ``kernel`` the filter size (at most H and W).
    """
    Xh = np.asarray(to_numpy(X), dtype=np.float64)
    n, d = Xh.shape
    shape = _image_shape(image_shape)
    C, Hh, Ww = shape
    check_positive("kernel", kernel, integer=True)
    if kernel > min(Hh, Ww):
        raise ValueError(f"kernel={kernel} is larger than the image ({Hh} x {Ww})")
    pixels = C * Hh * Ww
    if d not in (pixels, pixels + 1):
        raise ValueError(
            f"image_shape={shape} gives {pixels} features but X has {d} columns "
            f"(expected {pixels}, or {pixels + 1} with a bias column)"
        )
    rng = np.random.default_rng(seed)

    def draw(batch):
        H = np.zeros((batch, C, Hh, Ww))
        rows = rng.integers(0, Hh - kernel + 1, size=batch)
        cols = rng.integers(0, Ww - kernel + 1, size=batch)
        filters = rng.standard_normal((batch, C, kernel, kernel))
        for j in range(batch):
            H[j, :, rows[j]:rows[j] + kernel, cols[j]:cols[j] + kernel] = filters[j]
        H = H.reshape(batch, pixels).T
        if d > pixels:
            H = np.vstack([H, rng.standard_normal((1, batch))])
        return H

    return _distinct_patterns(Xh, n_patterns, draw, max_draws, "convolutional")


def _image_shape(image_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise ValueError(f"image_shape must be (C, H, W) or (H, W), got {image_shape!r}") from None
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) or (H, W) of positive sizes, got {image_shape!r}")
    return shape


def _distinct_patterns(Xh: np.ndarray, n_patterns: int, draw, max_draws: int | None, kind: str):
    """Draw gates in batches (``draw(b)`` -> (d, b)) until ``n_patterns`` distinct,
    non-empty patterns ``Xh @ h >= 0`` are found or ``max_draws`` gates are spent."""
    check_positive("n_patterns", n_patterns, integer=True)
    n, d = Xh.shape
    max_draws = 20 * n_patterns + 100 if max_draws is None else max_draws
    seen: set[bytes] = set()
    gates: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    drawn = 0
    while len(cols) < n_patterns and drawn < max_draws:
        batch = min(max(n_patterns - len(cols), 8), max_draws - drawn)
        H = draw(batch)
        drawn += batch
        masks = Xh @ H >= 0
        for j in range(batch):
            key = np.packbits(masks[:, j]).tobytes()
            if key in seen or not masks[:, j].any():
                continue
            seen.add(key)
            gates.append(H[:, j])
            cols.append(masks[:, j])
            if len(cols) == n_patterns:
                break
    if len(cols) < n_patterns:
        warnings.warn(
            f"only {len(cols)} distinct non-empty activation patterns found in {drawn} "
            f"{kind} draws (asked for n_patterns={n_patterns}); using those.",
            UserWarning,
            stacklevel=3,
        )
    D = np.stack(cols, axis=1).astype(np.float64) if cols else np.zeros((n, 0))
    H = np.stack(gates, axis=1) if gates else np.zeros((d, 0))
    return D, H
