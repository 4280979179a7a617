"""scikit-learn style estimators: ConvexReLUClassifier and ConvexReLURegressor."""
from __future__ import annotations

import inspect
import warnings

import numpy as np

from ._backend import asarray, backend_of, device_of, like, namespace, to_numpy
from .network import ReLUNetwork
from . import io
from .patterns import PATTERN_KINDS, sample_patterns
from .solve import solve
from .ustep import SOLVERS
from .validation import (DataConversionWarning, NotFittedError, as_array, check_backend, check_bool, check_choice, check_n,
                         check_positive, check_random_state, warn_constant_features)

#: solve arguments the estimators set themselves (not allowed in ``solve_options``)
_OWN = ("X", "Y", "D", "beta", "solver", "rho", "max_iter", "tol", "check_every", "max_time", "verbose", "warm_start")

try:  # integrate with scikit-learn when it is installed (it is not required)
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError:  # pragma: no cover - exercised only without scikit-learn

    class BaseEstimator:
        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep=True):
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params):
            for key, value in params.items():
                if key not in self._get_param_names():
                    raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}")
                setattr(self, key, value)
            return self

    class ClassifierMixin:
        _estimator_type = "classifier"

    class RegressorMixin:
        _estimator_type = "regressor"


class _ConvexReLUBase(BaseEstimator):
    """Shared fitting logic: validate, add a bias column, sample patterns, solve.

    ``solve_options`` : a dict of further ``admmnn.solve`` arguments, e.g.
    ``{"checkpoint": "fit.npz", "checkpoint_every": 100}``, ``{"memory_budget": 2**30}``
    or ``{"callback": f}``. A fit interrupted with Ctrl-C (or stopped by divergence)
    leaves the estimator fitted with the partial result (see ``result_.status``).
    ``save(path)`` / ``load(path, backend=...)`` store fitted estimators without pickle.
    ``patterns`` picks the pattern sampler: "gaussian" (dense Gaussian gates) or
    "conv" (random 3 x 3 filters at random image positions; needs ``image_shape``
    = (C, H, W) of the rows of X, flattened channel-major).
    """

    def __init__(
        self,
        n_patterns: int = 50,
        beta: float = 1e-3,
        solver: str = "auto",
        backend: str | None = None,
        device=None,
        dtype: str | None = None,
        bias: bool = True,
        max_iter: int = 5000,
        tol: float = 1e-4,
        rho: float | None = None,
        check_every: int = 10,
        max_time: float | None = None,
        warm_start: bool = False,
        random_state: int | None = 0,
        verbose: bool = False,
        solve_options: dict | None = None,
        patterns: str = "gaussian",
        image_shape: tuple | None = None,
    ):
        self.n_patterns = n_patterns
        self.beta = beta
        self.solver = solver
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.bias = bias
        self.max_iter = max_iter
        self.tol = tol
        self.rho = rho
        self.check_every = check_every
        self.max_time = max_time
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.solve_options = solve_options
        self.patterns = patterns
        self.image_shape = image_shape

    # -- helpers -----------------------------------------------------------
    def _check_params(self):
        check_positive("n_patterns", self.n_patterns, integer=True)
        check_positive("beta", self.beta)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("tol", self.tol)
        check_positive("rho", self.rho, allow_none=True)
        if self.backend is not None:
            check_backend(self.backend)
        check_choice("dtype", self.dtype, ("float32", "float64", None))
        check_choice("solver", self.solver, sorted(SOLVERS) + ["auto"])
        check_positive("check_every", self.check_every, integer=True)
        check_positive("max_time", self.max_time, allow_none=True)
        for name in ("bias", "warm_start", "verbose"):
            check_bool(name, getattr(self, name))
        check_random_state(self.random_state)
        check_choice("patterns", self.patterns, PATTERN_KINDS)
        opts = self.solve_options
        if opts is not None and not isinstance(opts, dict):
            raise TypeError(f"solve_options must be a dict of extra solve() arguments or None, got {type(opts).__name__}")
        clash = sorted(set(opts or {}) & set(_OWN))
        if clash:
            raise ValueError(f"solve_options may not set {clash}: they are estimator parameters (use set_params)")

    def _compute(self, X):
        """(backend, dtype) to compute in: the estimator's settings, else those of
        the input ``X``; float32 is the default on a GPU, float64 elsewhere."""
        backend = self.backend or backend_of(X)
        on_gpu = any(kind in str(self.device) for kind in ("cuda", "gpu"))
        return backend, self.dtype or ("float32" if on_gpu else "float64")

    def _design(self, X, fitting: bool):
        """Validated X on the estimator's backend, with the bias column appended."""
        X = as_array(X, "X")
        if fitting:
            self.backend_, self.dtype_ = self._compute(X)
            if X.shape[0] < 2:
                raise ValueError(f"X has 1 sample (n_samples=1); at least 2 are needed to fit")
            warn_constant_features(X)
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        Xb = asarray(X, self.backend_, self.dtype_, self.device)
        if self.bias:
            xp = namespace(Xb)
            ones = xp.ones((Xb.shape[0], 1), dtype=Xb.dtype, device=device_of(Xb))
            Xb = xp.concat([Xb, ones], axis=1)
        return Xb

    def _fit_targets(self, X, T):
        self._check_params()
        Xb = self._design(X, fitting=True)
        D, patterns = sample_patterns(self.patterns, Xb, self.n_patterns, seed=self.random_state, image_shape=self.image_shape)
        warm = getattr(self, "result_", None) if self.warm_start else None
        if warm is not None and warm.v.shape != (Xb.shape[1], 2 * D.shape[1] * T.shape[1]):
            warm = None
        with warnings.catch_warnings():  # all-zero features were reported by warn_constant_features
            warnings.filterwarnings("ignore", message=".*all-zero feature", category=UserWarning)
            result = solve(
                Xb,
                like(T, Xb),
                like(D, Xb),
                self.beta,
                solver=self.solver,
                rho=self.rho,
                max_iter=self.max_iter,
                tol=self.tol,
                check_every=self.check_every,
                max_time=self.max_time,
                verbose=self.verbose,
                warm_start=warm,
                **(self.solve_options or {}),
            )
        # set only now: a fit stopped before solve returned leaves the previous fit intact;
        # an interrupted or diverged solve returns, so the estimator is fitted with that partial result
        self.n_features_in_ = int(X.shape[1])
        self.patterns_ = patterns
        self.result_ = result
        self.n_iter_ = self.result_.n_iter
        net = self.result_.network
        self.network_ = ReLUNetwork(net.W1[:-1, :], net.W2, net.W1[-1, :]) if self.bias else net
        return self

    def _output(self, X):
        """Network output (n, C), in the backend of the input ``X``."""
        if not hasattr(self, "network_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        X = as_array(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        out = self.network_.predict(asarray(X, self.backend_, self.dtype_, self.device))
        if backend_of(X) == self.backend_:
            return out
        return asarray(out, backend_of(X), self.dtype_, device_of(X) if backend_of(X) == "torch" else None)

    def save(self, path) -> None:
        """Save the fitted estimator to ``path`` (npz + JSON, no pickle; see ``admmnn.io``)."""
        io.save(self, path)

    @classmethod
    def load(cls, path, backend: str | None = None, device=None):
        """Load an estimator saved by ``save``, on ``backend`` (default: the one it was fitted on)."""
        return io.load(path, backend=backend, device=device, kinds=[cls.__name__])

    @property
    def n_neurons_(self) -> int:
        """Number of active hidden neurons of the recovered network."""
        return self.network_.width

    def _more_tags(self):
        return {"poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if hasattr(tags, "regressor_tags") and tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True
        if hasattr(tags, "classifier_tags") and tags.classifier_tags is not None:
            tags.classifier_tags.poor_score = True
        return tags


def _labels(y, n):
    if y is None:
        raise ValueError("this estimator requires y to be passed, but the target y is None")
    y = np.asarray(to_numpy(y) if backend_of(y) != "numpy" else y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected; it was raveled to (n,)", DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-d array of labels, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} labels but X has {n} rows: the numbers of samples must match")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or Inf values")
    return y


def _unique(y):
    """``np.unique(y, return_inverse=True)`` with a clear error for mixed label types."""
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise TypeError(f"y mixes labels of types that cannot be compared ({kinds}); use labels of one type") from None


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = as_array(sample_weight, "sample_weight", ndims=(1,))
    check_n(n, w, "sample_weight")
    w = np.asarray(to_numpy(w), dtype=np.float64)
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError("sample_weight must be non-negative with a positive sum")
    return w


def _class_labels(y, n):
    """Labels for a classifier: anything discrete; continuous floats are refused."""
    y = _labels(y, n)
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        raise ValueError("Unknown label type: continuous target values; use ConvexReLURegressor for regression")
    return y


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Two-layer ReLU classifier trained to the global optimum of its convex program.

    Binary labels become +-1 targets (one output), C > 2 classes one-hot targets
    (C outputs, one-vs-all neurons). Labels of any type are kept in ``classes_``.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``patterns_`` (gate
    vectors, (d + bias, P)), ``result_`` (the ``SolveResult``), ``network_``.
    """

    def fit(self, X, y):
        """Fit on X (n, d) and labels y (n,)."""
        X = as_array(X, "X")
        y = _class_labels(y, X.shape[0])
        classes, idx = _unique(y)
        if classes.size < 2:
            raise ValueError(f"y has a single class (1 class: {classes[0]!r}); a classifier needs at least two")
        if classes.size == 2:
            T = (2.0 * idx - 1.0)[:, None]
        else:
            T = np.eye(classes.size)[idx]
        self._fit_targets(X, T)
        self.classes_ = classes
        return self

    def decision_function(self, X):
        """Scores: (n,) for binary problems (positive means ``classes_[1]``), else (n, C)."""
        out = self._output(X)
        return out[:, 0] if self.classes_.size == 2 else out

    def predict(self, X):
        """Predicted labels (n,), of the type seen in fit (in the backend of X
        when the labels are numbers and X is a torch or JAX array)."""
        s = to_numpy(self.decision_function(X))
        idx = (s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)
        labels = self.classes_[idx]
        if backend_of(X) != "numpy" and labels.dtype.kind in "iuf":
            return asarray(labels, backend_of(X), "float64" if labels.dtype.kind == "f" else None)
        return labels

    def score(self, X, y, sample_weight=None):
        """Mean accuracy. Raises ValueError for labels never seen in fit."""
        n = as_array(X, "X").shape[0]
        y = _class_labels(y, n)
        w = _weights(sample_weight, n)
        unseen = np.setdiff1d(_unique(y)[0], self.classes_)
        if unseen.size:
            raise ValueError(f"y has labels never seen in fit: {unseen.tolist()[:5]} (classes_ = {self.classes_.tolist()[:10]})")
        return float(np.average(to_numpy(self.predict(X)) == y, weights=w))


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    """Two-layer ReLU regressor (squared loss) trained to its global optimum.

    y may be (n,) or (n, C); predictions have the same shape.
    """

    def fit(self, X, y):
        """Fit on X (n, d) and targets y (n,) or (n, C)."""
        X = as_array(X, "X")
        if y is None:
            raise ValueError("this estimator requires y to be passed, but the target y is None")
        y = as_array(y, "y", ndims=(1, 2))
        check_n(X.shape[0], y, "y")
        y = np.asarray(to_numpy(y), dtype=np.float64)
        self._fit_targets(X, y[:, None] if y.ndim == 1 else y)
        self._y_1d = y.ndim == 1
        return self

    def predict(self, X):
        """Predictions (n,) or (n, C), as the targets were given."""
        out = self._output(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2, averaged over outputs (as scikit-learn's)."""
        X = as_array(X, "X")
        y = as_array(y, "y", ndims=(1, 2))
        check_n(X.shape[0], y, "y")
        y = np.asarray(to_numpy(y), dtype=np.float64)
        pred = self.predict(X)
        if y.shape != pred.shape:
            raise ValueError(f"y has shape {y.shape} but the predictions have shape {pred.shape} (as the targets in fit)")
        w = _weights(sample_weight, X.shape[0])
        y2, p2 = y.reshape(len(y), -1), pred.reshape(len(y), -1)
        resid = np.average((y2 - p2) ** 2, axis=0, weights=w)
        spread = np.average((y2 - np.average(y2, axis=0, weights=w)) ** 2, axis=0, weights=w)
        r2 = np.where(spread > 0, 1 - resid / np.where(spread > 0, spread, 1), np.where(resid == 0, 1.0, 0.0))
        return float(np.mean(r2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
