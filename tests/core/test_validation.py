"""Bad input raises ValueError with a message that names the problem."""
import warnings

import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, ConvexReLURegressor, gaussian_patterns

rng = np.random.default_rng(0)
X = rng.standard_normal((30, 4))
Y = rng.standard_normal(30)
D, _ = gaussian_patterns(X, 3, seed=0)
y_cls = (X[:, 0] > 0).astype(int)


def with_nan(a):
    a = a.copy()
    a[0, 0] = np.nan
    return a


def with_inf(a):
    a = a.copy()
    a[1, 1] = np.inf
    return a


SOLVE_CASES = [
    ("NaN in X", dict(X=with_nan(X)), "NaN"),
    ("Inf in X", dict(X=with_inf(X)), "NaN or Inf"),
    ("NaN in Y", dict(Y=np.r_[np.nan, Y[1:]]), "Y contains NaN"),
    ("mismatched n", dict(Y=Y[:-1]), "numbers of samples must match"),
    ("wrong D rows", dict(D=D[:-2]), "D has 28 rows"),
    ("D not 0/1", dict(D=D * 2), "only 0 and 1"),
    ("D 1-d", dict(D=D[:, 0]), "D must have 2 dimensions"),
    ("beta zero", dict(beta=0.0), "beta must be a positive"),
    ("beta negative", dict(beta=-1.0), "beta must be a positive"),
    ("empty X", dict(X=np.zeros((0, 4)), Y=np.zeros(0), D=np.zeros((0, 3))), "X is empty"),
    ("Y 3-d", dict(Y=np.zeros((30, 1, 1))), "Y must have 1 or 2 dimensions"),
    ("non-numeric X", dict(X=np.full((30, 4), "a")), "X must be numeric"),
    ("bad rho", dict(rho=-1.0), "rho must be"),
    ("bad tol", dict(tol=0.0), "tol must be"),
    ("bad max_iter", dict(max_iter=0), "max_iter must be"),
    ("bad gamma", dict(gamma=2.0), "gamma must lie"),
    ("unknown solver", dict(solver="magic"), "solver must be one of"),
]


@pytest.mark.parametrize("name,override,message", SOLVE_CASES, ids=[c[0] for c in SOLVE_CASES])
def test_solve_rejects(name, override, message):
    args = dict(X=X, Y=Y, D=D, beta=0.1)
    args.update(override)
    with pytest.raises(ValueError, match=message):
        admmnn.solve(**args)


def test_n_patterns_must_be_positive():
    with pytest.raises(ValueError, match="n_patterns must be a positive integer"):
        ConvexReLUClassifier(n_patterns=0).fit(X, y_cls)


def test_single_class_is_rejected():
    with pytest.raises(ValueError, match="single class"):
        ConvexReLUClassifier(n_patterns=3).fit(X, np.zeros(30))


def test_empty_X_estimator():
    with pytest.raises(ValueError, match="X is empty"):
        ConvexReLURegressor().fit(np.zeros((0, 3)), np.zeros(0))


def test_wrong_feature_count_at_predict():
    clf = ConvexReLUClassifier(n_patterns=3, max_iter=20).fit(X, y_cls)
    with pytest.raises(ValueError, match="X has 3 features, but ConvexReLUClassifier is expecting 4 features"):
        clf.predict(X[:, :3])


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        ConvexReLUClassifier(backend="tensorflow").fit(X, y_cls)


def test_unseen_labels_at_score():
    clf = ConvexReLUClassifier(n_patterns=3, max_iter=20).fit(X, y_cls)
    with pytest.raises(ValueError, match="never seen in fit"):
        clf.score(X, y_cls + 5)


def test_constant_feature_warns():
    Xc = X.copy()
    Xc[:, 2] = 0.0
    with pytest.warns(UserWarning, match="constant feature"):
        ConvexReLURegressor(n_patterns=3, max_iter=20).fit(Xc, Y)


def test_too_few_distinct_patterns_warns_and_terminates():
    # one feature and no bias: only two distinct non-empty patterns exist
    X1 = np.abs(rng.standard_normal((20, 1))) + 0.1
    with pytest.warns(UserWarning, match="distinct non-empty activation patterns"):
        D1, H = gaussian_patterns(X1, 10, seed=0)
    assert D1.shape == (20, 1) and H.shape == (1, 1)


# -- more cases: every entry point, every argument ---------------------------------------
import scipy.sparse  # noqa: E402

from admmnn.validation import NotFittedError  # noqa: E402

MORE_SOLVE_CASES = [
    ("Inf in Y", dict(Y=np.r_[np.inf, Y[1:]]), ValueError, "Y contains NaN or Inf"),
    ("NaN in D", dict(D=with_nan(D)), ValueError, "D contains NaN"),
    ("D without patterns", dict(D=np.zeros((30, 0))), ValueError, r"D is empty: 0 pattern\(s\)"),
    ("D 3-d", dict(D=D[:, :, None]), ValueError, "D must have 2 dimensions"),
    ("D of -1/1", dict(D=2 * D - 1), ValueError, "D must contain only 0 and 1"),
    ("non-numeric Y", dict(Y=np.array(["a"] * 30)), ValueError, "Y must be numeric"),
    ("complex X", dict(X=X + 1j), ValueError, "X must be real"),
    ("sparse X", dict(X=scipy.sparse.csr_matrix(X)), TypeError, "X is a sparse matrix"),
    ("ragged X", dict(X=[[1.0, 2.0], [3.0]]), ValueError, "X could not be read as an array"),
    ("X 1-d", dict(X=X[:, 0]), ValueError, "X must have 2 dimensions.*reshape"),
    ("beta NaN", dict(beta=float("nan")), ValueError, "beta must be a positive finite number"),
    ("beta string", dict(beta="0.1"), ValueError, "beta must be a positive finite number, got '0.1'"),
    ("rho Inf", dict(rho=float("inf")), ValueError, "rho must be a positive finite number"),
    ("tol NaN", dict(tol=float("nan")), ValueError, "tol must be"),
    ("max_iter float", dict(max_iter=2.5), ValueError, "max_iter must be a positive integer"),
    ("max_iter bool", dict(max_iter=True), ValueError, "max_iter must be a positive integer"),
    ("check_every zero", dict(check_every=0), ValueError, "check_every must be a positive integer"),
    ("max_time negative", dict(max_time=-1.0), ValueError, "max_time must be"),
    ("eps_abs zero", dict(eps_abs=0.0), ValueError, "eps_abs must be"),
    ("eps_rel negative", dict(eps_rel=-1e-4), ValueError, "eps_rel must be"),
    ("gamma zero", dict(gamma=0.0), ValueError, "gamma must lie"),
    ("unknown stop rule", dict(stop="never"), ValueError, "stop must be one of"),
    ("adapt_rho not bool", dict(adapt_rho="yes"), TypeError, "adapt_rho must be True or False"),
    ("verbose not bool", dict(verbose=1), TypeError, "verbose must be True or False"),
    ("callback not callable", dict(callback=3), TypeError, "callback must be callable"),
    ("warm_start not a result", dict(warm_start="previous"), TypeError, "warm_start must be a SolveResult"),
    ("unknown solver option", dict(frobnicate=1), TypeError, r"unknown option\(s\) \['frobnicate'\] for solver 'exact'"),
    ("memory_budget zero", dict(memory_budget=0), ValueError, "memory_budget must be a positive"),
    ("checkpoint_every zero", dict(checkpoint="x.npz", checkpoint_every=0), ValueError, "checkpoint_every must be"),
]


@pytest.mark.parametrize("name,override,exc,message", MORE_SOLVE_CASES, ids=[c[0] for c in MORE_SOLVE_CASES])
def test_solve_rejects_more(name, override, exc, message):
    args = dict(X=X, Y=Y, D=D, beta=0.1)
    args.update(override)
    with pytest.raises(exc, match=message):
        admmnn.solve(**args)


def test_solve_warns_about_all_zero_features_but_not_a_bias_column():
    Xz = np.c_[X, np.zeros(30), np.ones(30)]
    with pytest.warns(UserWarning, match=r"X has 1 all-zero feature\(s\)"):
        admmnn.solve(Xz, Y, D, 0.1, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        admmnn.solve(np.c_[X, np.ones(30)], Y, D, 0.1, max_iter=5)  # a bias column is constant, and fine


def test_solve_accepts_bool_D_and_integer_X():
    res = admmnn.solve(np.round(X * 3).astype(int), Y, D.astype(bool), 0.1, max_iter=5)
    assert np.isfinite(res.objective)


PARAM_CASES = [
    ("n_patterns", 0, ValueError, "n_patterns must be a positive integer"),
    ("n_patterns", 2.5, ValueError, "n_patterns must be a positive integer"),
    ("beta", 0.0, ValueError, "beta must be a positive"),
    ("beta", -1e-3, ValueError, "beta must be a positive"),
    ("max_iter", 0, ValueError, "max_iter must be a positive integer"),
    ("tol", -1.0, ValueError, "tol must be a positive"),
    ("rho", 0.0, ValueError, "rho must be a positive"),
    ("backend", "tensorflow", ValueError, "backend must be one of"),
    ("dtype", "float16", ValueError, "dtype must be one of"),
    ("solver", "magic", ValueError, "solver must be one of"),
    ("check_every", 0, ValueError, "check_every must be a positive integer"),
    ("max_time", 0.0, ValueError, "max_time must be a positive"),
    ("bias", "yes", TypeError, "bias must be True or False"),
    ("warm_start", 1, TypeError, "warm_start must be True or False"),
    ("verbose", "no", TypeError, "verbose must be True or False"),
    ("random_state", -1, ValueError, "random_state must be None, a non-negative int"),
    ("random_state", "seed", ValueError, "random_state must be None"),
    ("solve_options", ["gamma", 1.0], TypeError, "solve_options must be a dict"),
    ("solve_options", {"beta": 1.0}, ValueError, r"solve_options may not set \['beta'\]"),
    ("solve_options", {"gamma": 5.0}, ValueError, "gamma must lie"),
]


@pytest.mark.parametrize("Est", [ConvexReLUClassifier, ConvexReLURegressor])
@pytest.mark.parametrize("param,value,exc,message", PARAM_CASES, ids=[f"{c[0]}={c[1]!r}" for c in PARAM_CASES])
def test_estimator_parameters_are_validated(Est, param, value, exc, message):
    est = Est(n_patterns=3, max_iter=5).set_params(**{param: value})
    with pytest.raises(exc, match=message):
        est.fit(X, y_cls)


FIT_CASES = [
    ("NaN in X", ConvexReLUClassifier, with_nan(X), y_cls, ValueError, "X contains NaN"),
    ("Inf in X", ConvexReLURegressor, with_inf(X), Y, ValueError, "X contains NaN or Inf"),
    ("NaN in y (classifier)", ConvexReLUClassifier, X, np.r_[np.nan, y_cls[1:]], ValueError, "y contains NaN"),
    ("Inf in y (regressor)", ConvexReLURegressor, X, np.r_[np.inf, Y[1:]], ValueError, "y contains NaN or Inf"),
    ("mismatched lengths (classifier)", ConvexReLUClassifier, X, y_cls[:-1], ValueError, "numbers of samples must match"),
    ("mismatched lengths (regressor)", ConvexReLURegressor, X, Y[:-1], ValueError, "numbers of samples must match"),
    ("y 2-d labels", ConvexReLUClassifier, X, np.c_[y_cls, y_cls], ValueError, "y must be a 1-d array"),
    ("y 3-d targets", ConvexReLURegressor, X, Y[:, None, None], ValueError, "y must have 1 or 2 dimensions"),
    ("empty X", ConvexReLUClassifier, np.zeros((0, 4)), np.zeros(0), ValueError, "X is empty"),
    ("X without features", ConvexReLURegressor, np.zeros((30, 0)), Y, ValueError, r"X is empty: 0 feature\(s\)"),
    ("one sample", ConvexReLURegressor, X[:1], Y[:1], ValueError, "at least 2 are needed"),
    ("single class", ConvexReLUClassifier, X, np.full(30, "a"), ValueError, "single class"),
    ("non-numeric X", ConvexReLURegressor, np.full((30, 4), "a"), Y, ValueError, "X must be numeric"),
    ("continuous labels", ConvexReLUClassifier, X, Y, ValueError, "continuous target values"),
    ("mixed label types", ConvexReLUClassifier, X, np.array([1, "a"] * 15, dtype=object), TypeError, "mixes labels of types"),
    ("y is None", ConvexReLURegressor, X, None, ValueError, "requires y to be passed"),
]


@pytest.mark.parametrize("name,Est,Xf,yf,exc,message", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects(name, Est, Xf, yf, exc, message):
    with pytest.raises(exc, match=message):
        Est(n_patterns=3, max_iter=5).fit(Xf, yf)


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = ConvexReLUClassifier(n_patterns=3, max_iter=20).fit(X, y_cls)
        reg = ConvexReLURegressor(n_patterns=3, max_iter=20).fit(X, Y)
    return {"clf": clf, "reg": reg}


PREDICT_CASES = [
    ("wrong feature count", "clf", "predict", (X[:, :3],), ValueError, "X has 3 features, but ConvexReLUClassifier is expecting 4"),
    ("NaN in X", "reg", "predict", (with_nan(X),), ValueError, "X contains NaN"),
    ("X 1-d", "clf", "decision_function", (X[0],), ValueError, "X must have 2 dimensions"),
    ("non-numeric X", "reg", "predict", (np.full((3, 4), "z"),), ValueError, "X must be numeric"),
    ("unseen labels", "clf", "score", (X, y_cls + 5), ValueError, "never seen in fit: \\[5, 6\\]"),
    ("score lengths", "clf", "score", (X, y_cls[:-2]), ValueError, "numbers of samples must match"),
    ("score NaN y", "reg", "score", (X, np.r_[np.nan, Y[1:]]), ValueError, "y contains NaN"),
    ("score y shape", "reg", "score", (X, np.c_[Y, Y]), ValueError, r"y has shape \(30, 2\) but the predictions have shape \(30,\)"),
    ("score lengths (regressor)", "reg", "score", (X, Y[:-1]), ValueError, "numbers of samples must match"),
    ("score wrong features", "reg", "score", (X[:, :2], Y), ValueError, "X has 2 features"),
    ("negative sample_weight", "clf", "score", (X, y_cls, -np.ones(30)), ValueError, "sample_weight must be non-negative"),
]


@pytest.mark.parametrize("name,which,method,args,exc,message", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_predict_and_score_reject(fitted, name, which, method, args, exc, message):
    with pytest.raises(exc, match=message):
        getattr(fitted[which], method)(*args)


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ConvexReLURegressor().predict(X)
    assert issubclass(NotFittedError, ValueError)


def test_regressor_score_matches_sklearn(fitted):
    from sklearn.metrics import r2_score

    reg = fitted["reg"]
    w = np.linspace(0.5, 2, 30)
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, reg.predict(X)))
    assert reg.score(X, Y, sample_weight=w) == pytest.approx(r2_score(Y, reg.predict(X), sample_weight=w))


class FrameLike:
    """A table that converts itself with __array__, like a pandas DataFrame."""

    def __init__(self, values):
        self.values = values

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)


def test_dataframe_like_input():
    clf = ConvexReLUClassifier(n_patterns=3, max_iter=20).fit(FrameLike(X), list(y_cls))
    np.testing.assert_array_equal(clf.predict(FrameLike(X)), clf.predict(X))
    assert admmnn.solve(FrameLike(X), FrameLike(Y), FrameLike(D), 0.1, max_iter=5).n_iter == 5


def test_pandas_input():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcd"))
    reg = ConvexReLURegressor(n_patterns=3, max_iter=20).fit(frame, pd.Series(Y))
    np.testing.assert_array_equal(reg.predict(frame), reg.predict(X))
    with pytest.raises(ValueError, match="X must be numeric"):
        reg.predict(frame.assign(a="text"))


def test_save_and_load_reject(tmp_path, fitted):
    with pytest.raises(NotFittedError, match="only fitted estimators can be saved"):
        ConvexReLUClassifier().save(tmp_path / "m.npz")
    fitted["clf"].save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="backend must be one of"):
        ConvexReLUClassifier.load(tmp_path / "m.npz", backend="mxnet")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not an admmnn file"):
        admmnn.load(tmp_path / "junk.npz")
    with pytest.raises(TypeError, match="save expects a SolveResult or a fitted admmnn estimator"):
        admmnn.save(np.zeros(3), tmp_path / "z.npz")
