"""Input checks at the edge of the library: clear ValueErrors, never deep stack traces."""
from __future__ import annotations

import inspect
import math
import numbers
import warnings

import numpy as np
from array_api_compat import is_array_api_obj
from sklearn.exceptions import NotFittedError  # noqa: F401  (re-exported: admmnn.validation.NotFittedError)
from sklearn.utils import check_array

from ._backend import BACKENDS, namespace


def as_array(x, name: str, ndims=(2,), columns: str = "feature(s)"):
    """Return ``x`` as an array-API array (NumPy for lists, DataFrames...).

    Raises ValueError naming ``name`` for non-numeric data (strings, objects that
    are not numbers, complex numbers), a wrong number of dimensions, an empty
    array, or NaN/Inf values. Host data go through scikit-learn's ``check_array``
    (numeric dtype), torch and JAX arrays stay where they are.
    """
    if x is None:
        raise ValueError(f"{name} is None; this estimator requires y to be passed, but the target y is None")
    if hasattr(x, "tocsr") or type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported, pass {name}.toarray()")
    if not is_array_api_obj(x):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists etc.
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biufc":
        try:
            x = check_array(x, dtype="numeric", ensure_2d=False, allow_nd=True, ensure_min_samples=0,
                            ensure_min_features=0, ensure_all_finite=False, input_name=name)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name} must be numeric ({x.dtype} array given): {exc}") from None
    if x.ndim not in ndims:
        hint = ""
        if x.ndim == 1 and 2 in ndims:
            hint = "; Reshape your data with x.reshape(-1, 1) for one feature or x.reshape(1, -1) for one sample"
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
        what = "sample(s)" if x.shape[0] == 0 else columns
        raise ValueError(f"{name} is empty: 0 {what} (shape={tuple(x.shape)}) while a minimum of 1 is required.")
    xp = namespace(x)
    if xp.isdtype(x.dtype, "complex floating"):
        raise ValueError(f"{name} must be real: Complex data not supported (dtype {x.dtype})")
    if xp.isdtype(x.dtype, "real floating") and not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def check_n(n: int, other, name: str):
    if other.shape[0] != n:
        raise ValueError(f"{name} has {other.shape[0]} rows but X has {n}: the numbers of samples must match")


def check_patterns(D, n: int):
    """D must be an (n, P) array of zeros and ones."""
    D = as_array(D, "D", ndims=(2,), columns="pattern(s) (columns)")
    check_n(n, D, "D")
    xp = namespace(D)
    if not bool(xp.all((D == 0) | (D == 1))):
        raise ValueError("D must contain only 0 and 1 (activation patterns 1[X h >= 0])")
    return D


def check_positive(name: str, value, integer: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return value
    kind = numbers.Integral if integer else numbers.Real
    # integers are finite (and np.isfinite refuses those beyond int64)
    finite = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and math.isfinite(value))
    if isinstance(value, bool) or not isinstance(value, kind) or not finite or value <= 0:
        what = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_backend(backend):
    return check_choice("backend", backend, BACKENDS)


def warn_constant_features(X, name: str = "X"):
    """Warn (not fail) about all-constant columns, e.g. an all-zero feature."""
    xp = namespace(X)
    spread = xp.max(X, axis=0) - xp.min(X, axis=0)
    n_const = int(xp.sum(xp.astype(spread == 0, xp.int32)))
    if n_const and X.shape[0] > 1:
        warnings.warn(f"{name} has {n_const} constant feature(s); they carry no information", UserWarning, stacklevel=3)


def check_bool(name: str, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_callable(name: str, value):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


def check_random_state(value):
    """None, a non-negative int or a NumPy Generator/RandomState (as gaussian_patterns accepts)."""
    ok = value is None or isinstance(value, (np.random.Generator, np.random.RandomState))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        ok = value >= 0
    if not ok:
        raise ValueError(f"random_state must be None, a non-negative int or a numpy Generator, got {value!r}")
    return value


def check_options(solver_cls, options: dict):
    """Options passed through to a u-step solver must be parameters it accepts."""
    params = inspect.signature(solver_cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [p for p in params if p not in ("op", "rho")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for solver {getattr(solver_cls, 'name', solver_cls.__name__)!r}; "
            f"it accepts {known or 'no options'} (plus solve's own keyword arguments and memory_budget)"
        )


def warn_zero_features(X, name: str = "X"):
    """Warn (not fail) about all-zero columns, which solve cannot use (constant
    non-zero columns are fine there: they are how a bias is given)."""
    xp = namespace(X)
    n_zero = int(xp.sum(xp.astype(xp.all(X == 0, axis=0), xp.int32)))
    if n_zero:
        warnings.warn(f"{name} has {n_zero} all-zero feature(s) (column(s)); they carry no information", UserWarning, stacklevel=3)
