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
    # points whose score is zero up to rounding (all neurons off) are ties: their
    # label depends on the sign of a 1e-15 residue, which differs by backend
    clear = np.abs(ref.decision_function(X)) > 1e-6
    assert np.array_equal(to_numpy(clf.predict(Xb))[clear], ref.predict(X)[clear])


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


@pytest.mark.parametrize("solver", ["cg", "pcg-jacobi", "pcg-nystrom"])
def test_jax_cg_loop_is_compiled_once_per_shape(solver):
    """Under JAX the whole PCG solve is one lax.while_loop: its iteration count
    comes back as a device array (no host read per CG iteration), and neither a
    new k (tolerance) nor a new rho (preconditioner arrays) recompiles."""
    from admmnn._backend import jit
    from admmnn.operators import Operators
    from admmnn.ustep import make_usolver
    from admmnn.ustep.cg import _solve

    X, Y, D, beta = small_problem("binary")
    Xj, Dj = asarray(X, "jax"), asarray(D, "jax")
    op = Operators(Xj, Dj, 1)
    usolver = make_usolver(solver, op, 0.3)
    rng = np.random.default_rng(0)
    b = asarray(rng.standard_normal((op.d, op.n_groups)), "jax")
    compiled = jit(_solve, Xj)
    before = compiled._cache_size()
    u1 = usolver.solve(b, None, k=1)
    assert isinstance(usolver._pending[-1][0], jax.Array)
    u2 = usolver.with_rho(0.6).solve(b, u1, k=5)
    usolver.solve(b, u2, k=9)
    assert compiled._cache_size() - before <= 1
    # and the answers are right: A u = b to the tolerance asked at k = 9
    resid = to_numpy(b - usolver.matvec(usolver.solve(b, None, k=50)))
    assert np.linalg.norm(resid) <= 1.01 * usolver.tolerance(50) * np.linalg.norm(to_numpy(b))
    assert len(usolver.info["cg_iters"]) == 4 and not usolver._pending


@pytest.mark.parametrize("backend", BACKENDS)
def test_pcg_with_zero_right_hand_side_returns_zero(backend):
    from admmnn._backend import namespace
    from admmnn.ustep.cg import pcg

    b = asarray(np.zeros((4, 3)), backend)
    x0 = asarray(np.ones((4, 3)), backend)
    x, it, rel = pcg(namespace(b), lambda u: 2 * u, lambda r: r, b, x0, 1e-8, 50)
    assert np.all(to_numpy(x) == 0) and int(to_numpy(it)) == 0 and float(to_numpy(rel)) == 0.0


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("solver", ["exact", "pcg-nystrom-block"])
def test_correlated_features_reach_the_optimum_on_every_backend(backend, solver):
    """The ill-conditioned oracle problem (rank-3 factors, beta = 1e-3) in float64 on torch and
    JAX: the Clarabel optimum to 1e-5 and a certified gap <= 1e-4 within the default max_iter."""
    X, Y, D, beta = small_problem("correlated")
    pstar = cvxpy_optimum(X, Y, D, beta)[0]
    res = admmnn.solve(*(asarray(a, backend, "float64") for a in (X, Y, D)), beta, solver=solver, tol=1e-4)
    assert backend_of(res.v) == backend
    assert res.status == "optimal" and res.rel_gap <= 1e-4
    assert abs(res.objective - pstar) / pstar <= 1e-5
    assert res.dual_bound <= pstar * (1 + 1e-8)


def test_is_gpu_reads_the_device_not_its_spelling():
    from admmnn._backend import is_gpu

    assert not is_gpu("numpy", None) and not is_gpu("torch", None) and not is_gpu("jax", "cpu")
    assert is_gpu("jax", "gpu") and is_gpu("jax", "cuda:1")
    torch = pytest.importorskip("torch")
    assert is_gpu("torch", "cuda") and is_gpu("torch", torch.device("cuda", 0)) and not is_gpu("torch", "cpu")
