"""One implementation on NumPy, PyTorch and JAX (CPU here; the same code runs on GPU)."""
import numpy as np
import pytest

import admmnn
from admmnn._backend import asarray, backend_of, to_numpy
from oracle import cvxpy_optimum, small_problem

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

BACKENDS = ["numpy", "torch", "jax"]
KINDS = ["binary", "multiclass", "regression"]


@pytest.fixture(scope="module")
def oracle():
    out = {}
    for kind in KINDS:
        X, Y, D, beta = small_problem(kind)
        out[kind] = (X, Y, D, beta, cvxpy_optimum(X, Y, D, beta)[0])
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_oracle_float64(oracle, backend, kind):
    X, Y, D, beta, pstar = oracle[kind]
    args = [asarray(a, backend, "float64") for a in (X, Y, D)]
    res = admmnn.solve(*args, beta, tol=1e-6, max_iter=30000)
    assert backend_of(res.v) == backend
    assert res.status == "optimal"
    assert abs(res.objective - pstar) / pstar <= 1e-5
    assert res.gap / res.objective <= 1e-4
    assert res.dual_bound <= pstar * (1 + 1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_oracle_float32(oracle, backend, kind):
    X, Y, D, beta, pstar = oracle[kind]
    args = [asarray(a, backend, "float32") for a in (X, Y, D)]
    res = admmnn.solve(*args, beta, tol=1e-4, max_iter=5000)
    assert str(res.v.dtype).endswith("float32")
    assert abs(res.objective - pstar) / pstar <= 1e-3


def test_same_seed_same_patterns_and_objectives_on_every_backend():
    X, Y, _, beta = small_problem("multiclass")
    results, patterns = {}, {}
    for backend in BACKENDS:
        Xb = asarray(X, backend, "float64")
        D, H = admmnn.gaussian_patterns(Xb, 6, seed=11)
        patterns[backend] = (D, H)
        results[backend] = admmnn.solve(Xb, asarray(Y, backend), asarray(D, backend), beta, max_iter=400, tol=1e-9)
    for backend in BACKENDS[1:]:
        assert np.array_equal(patterns[backend][0], patterns["numpy"][0])
        assert np.array_equal(patterns[backend][1], patterns["numpy"][1])
        ref = results["numpy"].objective
        assert abs(results[backend].objective - ref) / ref <= 1e-8
        assert results[backend].n_iter == results["numpy"].n_iter


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_estimator_follows_the_input_backend(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    Xb = asarray(X, backend, "float32")
    clf = admmnn.ConvexReLUClassifier(n_patterns=6, max_iter=100).fit(Xb, asarray(y, backend, None))
    assert clf.backend_ == backend and clf.dtype_ == "float64"
    scores = clf.decision_function(Xb)
    assert backend_of(scores) == backend
    ref = admmnn.ConvexReLUClassifier(n_patterns=6, max_iter=100).fit(X, y)
    assert np.allclose(to_numpy(scores), ref.decision_function(X), rtol=1e-5, atol=1e-6)
    assert np.array_equal(to_numpy(clf.predict(Xb)), ref.predict(X))


def test_exported_torch_module_and_jax_function_reproduce_predict():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = np.maximum(X[:, 0] - X[:, 1], 0)
    reg = admmnn.ConvexReLURegressor(n_patterns=8, max_iter=200).fit(X, y)
    expected = reg.network_.predict(X)
    module = reg.network_.to_torch()
    with torch.no_grad():
        got = module(torch.as_tensor(X)).numpy()
    assert np.allclose(got, expected, rtol=1e-10, atol=1e-12)
    f, params = reg.network_.to_jax()
    jax.config.update("jax_enable_x64", True)
    got_jax = np.asarray(jax.jit(f)(params, jax.numpy.asarray(X)))
    assert np.allclose(got_jax, expected, rtol=1e-10, atol=1e-12)
    assert np.allclose(reg.predict(X), expected[:, 0])
