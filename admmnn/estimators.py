"""scikit-learn style estimators: ConvexReLUClassifier and ConvexReLURegressor."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils.validation import check_is_fitted

from . import io, targets
from ._backend import asarray, backend_of, device_of, is_gpu, like, namespace, to_numpy
from .network import ReLUNetwork
from .patterns import PATTERN_KINDS, sample_patterns
from .result import SolveResult, Status
from .solve import solve
from .ustep import SOLVERS
from .validation import (as_array, check_backend, check_bool, check_choice, check_n, check_positive, check_random_state,
                         warn_constant_features)

#: solve arguments the estimators set themselves (not allowed in ``solve_options``)
_OWN = ("X", "Y", "D", "beta", "solver", "rho", "max_iter", "tol", "check_every", "max_time", "verbose", "warm_start",
        "mesh")

class _ConvexReLUBase(BaseEstimator):
    """Shared fitting logic: validate, add a bias column, sample patterns, solve.

    A fit interrupted with Ctrl-C (or stopped by divergence) leaves the estimator
    fitted with the partial result (see ``result_.status``). ``save(path)`` /
    ``load(path, backend=...)`` store fitted estimators without pickle.

    Parameters
    ----------
    n_patterns : int, default 50
        Number P of sampled activation patterns (hidden-layer candidates).
    beta : float, default 1e-3
        Group-lasso weight of ``admmnn.solve``.
    solver : str, default "auto"
        u-step solver (see ``admmnn.solve``).
    backend : {"numpy", "torch", "jax"} or None, default None
        Backend to compute in; None: that of X ("jax" with a mesh).
    device : optional
        Device of the computation (torch or JAX).
    dtype : {"float32", "float64"} or None, default None
        None: float32 on a GPU, float64 elsewhere.
    bias : bool, default True
        Append a ones column to X (the network gets first-layer biases).
    max_iter, tol, rho, check_every, max_time, verbose
        As in ``admmnn.solve``.
    warm_start : bool, default False
        Start a new fit from the previous ``result_`` when the shapes agree.
    random_state : int or None, default 0
        Seed of the pattern sampler.
    solve_options : dict or None, default None
        Further ``admmnn.solve`` arguments, e.g.
        ``{"checkpoint": "fit.npz", "checkpoint_every": 100}``, ``{"memory_budget": 2**30}``
        or ``{"callback": f}``.
    patterns : {"gaussian", "conv"}, default "gaussian"
        The pattern sampler: dense Gaussian gates, or random 3 x 3 filters at random
        image positions (needs ``image_shape``).
    image_shape : tuple or None, default None
        (C, H, W) of the rows of X, flattened channel-major (``patterns="conv"``).
    mesh : jax.sharding.Mesh or None, default None
        A mesh with a "data" axis to shard the rows of the fit over
        (``admmnn.sharding``; the backend defaults to "jax" then, and the patterns
        are drawn before sharding, so they do not depend on the mesh); prediction
        runs on one device, and ``save`` does not store the mesh.
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
        mesh=None,
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
        self.mesh = mesh

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
        backend = self.backend or ("jax" if self.mesh is not None else backend_of(X))
        return backend, self.dtype or ("float32" if is_gpu(backend, self.device) else "float64")

    def _design(self, X, fitting: bool):
        """Validated X on the estimator's backend, with the bias column appended."""
        X = as_array(X, "X")
        if fitting:
            self.backend_, self.dtype_ = self._compute(X)
            if X.shape[0] < 2:
                raise ValueError("X has 1 sample (n_samples=1); at least 2 are needed to fit")
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
                mesh=self.mesh,
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
        if result.status in (Status.MAX_ITER, Status.TIME_LIMIT):
            warnings.warn(
                f"{type(self).__name__} stopped at {result.status} after {result.n_iter} iterations with a certified "
                f"relative gap of {result.rel_gap:.2e}, short of tol = {self.tol:g}; increase max_iter or max_time",
                ConvergenceWarning, stacklevel=3)
        return self

    def _output(self, X):
        """Network output (n, C), in the backend of the input ``X``."""
        check_is_fitted(self, "network_", msg="this %(name)s is not fitted yet; call fit first")
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

    def _file_parts(self) -> tuple[dict, dict]:
        """(arrays, meta) for ``admmnn.io.write_npz``: parameters, fitted attributes,
        network, patterns and the ``SolveResult`` (under ``result/``)."""
        check_is_fitted(self, "network_", msg="this %(name)s is not fitted yet; only fitted estimators can be saved")
        params = {}
        for key, val in self.get_params(deep=False).items():
            if key == "device" and val is not None and not isinstance(val, str):
                val = str(val)
            if key == "mesh":  # devices of this run: a loaded estimator predicts on one device
                val = None
            params[key] = io.json_value(val, key)
        arrays, result_meta = self.result_.to_arrays(prefix="result/")
        net = self.network_
        arrays.update({"network/W1": net.W1, "network/W2": net.W2, "patterns": self.patterns_})
        if net.b1 is not None:
            arrays["network/b1"] = net.b1
        if hasattr(self, "classes_"):
            arrays["classes"] = _labels_array(self.classes_)
        meta = {"kind": type(self).__name__, "result": result_meta, "params": params,
                "fitted": {key: io.json_value(getattr(self, key), key) for key in _FITTED if hasattr(self, key)}}
        return arrays, meta

    @classmethod
    def _from_file(cls, arrays: dict, meta: dict, backend=None, device=None):
        """The inverse of ``_file_parts``, on ``backend`` (default: the fitted one)."""
        params = dict(meta["params"])
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise io.ModelFileError(f"the file sets parameters {sorted(unknown)} that {cls.__name__} does not have")
        if backend is not None:
            params["backend"], params["device"] = backend, device
        est = cls(**params)
        est._check_params()
        for key, val in meta.get("fitted", {}).items():
            if key in _FITTED:
                setattr(est, key, val)
        if backend is not None:
            est.backend_ = backend
        b, dev, dt = est.backend_, est.device, est.dtype_
        if "classes" in arrays:
            est.classes_ = arrays["classes"]
        est.patterns_ = np.asarray(arrays["patterns"])
        b1 = arrays.get("network/b1")
        est.network_ = ReLUNetwork(asarray(arrays["network/W1"], b, dt, dev), asarray(arrays["network/W2"], b, dt, dev),
                                   None if b1 is None else asarray(b1, b, dt, dev))
        est.result_ = SolveResult.from_arrays(arrays, meta["result"], b, dev, prefix="result/")
        return est

    @property
    def n_neurons_(self) -> int:
        """Number of active hidden neurons of the recovered network."""
        return self.network_.width

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


#: fitted attributes a saved estimator records (besides arrays)
_FITTED = ("n_features_in_", "n_iter_", "_y_1d", "backend_", "dtype_")


def _labels_array(classes) -> np.ndarray:
    """``classes_`` as a NumPy array that can be saved without pickle."""
    a = np.asarray(classes)
    if a.dtype.hasobject:
        plain = np.asarray(a.tolist())
        if plain.dtype.hasobject or plain.shape != a.shape or plain.tolist() != a.tolist():
            raise TypeError("classes_ holds labels of mixed or object types; they cannot be saved without pickle")
        a = plain
    return a


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
        classes, _ = targets.unique_labels(y)
        if classes.size < 2:
            raise ValueError(f"y has a single class (1 class: {classes[0]!r}); a classifier needs at least two")
        T, classes = targets.encode(y, classes)
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
        labels = targets.decode(to_numpy(self.decision_function(X)), self.classes_)
        if backend_of(X) != "numpy" and labels.dtype.kind in "iuf":
            return asarray(labels, backend_of(X), "float64" if labels.dtype.kind == "f" else None)
        return labels

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (scikit-learn's). Raises ValueError for labels never seen in fit."""
        n = as_array(X, "X").shape[0]
        y = _class_labels(y, n)
        _weights(sample_weight, n)
        unseen = np.setdiff1d(targets.unique_labels(y)[0], self.classes_)
        if unseen.size:
            raise ValueError(f"y has labels never seen in fit: {unseen.tolist()[:5]} (classes_ = {self.classes_.tolist()[:10]})")
        return float(super().score(X, y, sample_weight))


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
        """Coefficient of determination R^2 (scikit-learn's), averaged over outputs."""
        X = as_array(X, "X")
        y = as_array(y, "y", ndims=(1, 2))
        check_n(X.shape[0], y, "y")
        y = np.asarray(to_numpy(y), dtype=np.float64)
        pred = to_numpy(self.predict(X))
        if y.shape != pred.shape:
            raise ValueError(f"y has shape {y.shape} but the predictions have shape {pred.shape} (as the targets in fit)")
        _weights(sample_weight, X.shape[0])
        return float(super().score(X, y, sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


for _cls in (ConvexReLUClassifier, ConvexReLURegressor):
    io.register(_cls.__name__, _cls._from_file)
