"""Property tests (hypothesis): random problems, random bad input, random checkpoints."""
import os
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import admmnn
from admmnn import ConvexReLUClassifier, gaussian_patterns
from admmnn.result import STATUSES

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def problems(draw):
    """A random finite problem: X (n, d), Y (n,) or (n, C), 0/1 patterns D (n, P)."""
    n, d = draw(st.integers(2, 12)), draw(st.integers(1, 4))
    X = draw(hnp.arrays(np.float64, (n, d), elements=finite))
    Y = draw(hnp.arrays(np.float64, draw(st.sampled_from([(n,), (n, 1), (n, 2)])), elements=finite))
    if draw(st.booleans()):  # patterns some gate realises, as gaussian_patterns makes them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            D, _ = gaussian_patterns(X, draw(st.integers(1, 4)), seed=draw(st.integers(0, 1000)))
        assume(D.shape[1] > 0)
    else:  # any 0/1 matrix
        D = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 4))), elements=st.sampled_from([0.0, 1.0])))
    beta = draw(st.floats(1e-4, 10))
    return X, Y, D, beta


def solve_quietly(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant / all-zero features
        return admmnn.solve(*args, **kw)


@SETTINGS
@given(problems(), st.integers(1, 40), st.integers(1, 7))
def test_random_problems_give_finite_certified_results(problem, max_iter, check_every):
    X, Y, D, beta = problem
    res = solve_quietly(X, Y, D, beta, max_iter=max_iter, check_every=check_every)
    assert res.status in STATUSES and res.status != "diverged"
    assert np.isfinite(res.objective) and np.isfinite(res.dual_bound)
    assert all(np.all(np.isfinite(a)) for a in res.state)
    scale = max(1.0, abs(res.objective))
    # the objective is the training loss of the returned network, recomputed here independently
    Y2 = Y.reshape(len(Y), -1)
    loss = 0.5 * np.sum((res.network.predict(X) - Y2) ** 2) + res.network.penalty(beta)
    assert loss == pytest.approx(res.objective, rel=1e-8, abs=1e-10)
    # weak duality: the dual bound is below the objective of the feasible point v = 0 ...
    assert res.dual_bound <= 0.5 * np.sum(Y2**2) + 1e-9 * scale
    # ... and below the objective of any point that satisfies the cone constraints
    k = list(res.history["iteration"]).index(res.n_iter)
    if res.history["cone_violation"][k] == 0:
        assert res.objective >= res.dual_bound - 1e-9 * scale
    assert len({len(v) for v in res.history.values()}) == 1


def _bad_array(draw, a, name):
    a = a.copy()
    i, j = draw(st.integers(0, a.shape[0] - 1)), draw(st.integers(0, a.shape[1] - 1)) if a.ndim == 2 else None
    value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if a.ndim == 2:
        a[i, j] = value
    else:
        a[i] = value
    return {name: a}


@st.composite
def bad_arguments(draw):
    """One argument of solve made invalid at random; the rest valid."""
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    n, d = draw(st.integers(2, 8)), draw(st.integers(1, 3))
    X, Y = rng.standard_normal((n, d)), rng.standard_normal(n)
    D = (rng.random((n, 2)) < 0.5).astype(float)
    good = dict(X=X, Y=Y, D=D, beta=0.1, max_iter=3)
    not_positive = st.one_of(st.floats(max_value=0), st.just(np.nan), st.just(np.inf), st.text(max_size=3), st.none())
    kind = draw(st.sampled_from(["nonfinite", "shape", "D values", "number", "integer", "name", "gamma"]))
    if kind == "nonfinite":
        name = draw(st.sampled_from(["X", "Y", "D"]))
        bad = _bad_array(draw, good[name], name)
    elif kind == "shape":
        name = draw(st.sampled_from(["X", "Y", "D"]))
        rows = draw(st.integers(0, 10).filter(lambda m: m != n))
        shape = draw(st.sampled_from([(rows,) + good[name].shape[1:], (n, 1, 1), (n,) if name != "Y" else (n, 1, 2)]))
        bad = {name: rng.standard_normal(shape)}
    elif kind == "D values":
        bad = {"D": D + draw(st.sampled_from([-0.5, 0.5, 2.0]))}  # never a 0/1 array again
    elif kind == "number":
        bad = {draw(st.sampled_from(["beta", "tol", "rho", "eps_abs", "eps_rel", "max_time"])): draw(not_positive.filter(lambda v: v is not None))}
        if "rho" in bad or "max_time" in bad:
            assume(bad.get("rho", bad.get("max_time")) is not None)
    elif kind == "integer":
        bad = {draw(st.sampled_from(["max_iter", "check_every"])): draw(st.one_of(st.integers(max_value=0), st.floats(0.5, 9.5), st.booleans()))}
    elif kind == "name":
        bad = {draw(st.sampled_from(["solver", "stop"])): draw(st.text(min_size=0, max_size=6).filter(lambda s: s not in ("exact", "auto", "gap", "residuals", "both")))}
    else:
        bad = {"gamma": draw(st.one_of(st.floats(max_value=0), st.floats(min_value=1.62), st.just(np.nan)))}
    return {**good, **bad}, next(iter(bad))


@SETTINGS
@given(bad_arguments())
def test_bad_arguments_raise_value_or_type_error(case):
    args, name = case
    with pytest.raises((ValueError, TypeError)) as info:
        solve_quietly(**args)
    assert name in str(info.value), (name, str(info.value))


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 120), st.integers(1, 60), st.integers(1, 12), st.sampled_from([1e-3, 0.1, 30.0]))
def test_resume_from_any_checkpoint_is_bit_identical(seed, k_stop, extra, check_every, rho):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.standard_normal((25, 3)), np.ones(25)]
    Y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(25)
    D, _ = gaussian_patterns(X, 4, seed=seed)
    kw = dict(beta=1e-2, rho=rho, tol=1e-14, check_every=check_every)
    total = k_stop + extra
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "c.npz")

        def stop(k, m, state):
            if k >= k_stop:
                raise KeyboardInterrupt

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            admmnn.solve(X, Y, D, max_iter=total, checkpoint=ck, checkpoint_every=7, callback=stop, **kw)
            if not os.path.exists(ck):  # interrupted at the first check: nothing to resume from
                return
            resumed = admmnn.solve(X, Y, D, max_iter=total, resume=ck, **kw)
    full = admmnn.solve(X, Y, D, max_iter=total, **kw)
    for a, b in zip(resumed.state, full.state):
        np.testing.assert_array_equal(a, b)
    assert (resumed.n_iter, resumed.rho, resumed.objective, resumed.status) == (full.n_iter, full.rho, full.objective, full.status)
    np.testing.assert_array_equal(resumed.history["objective"], full.history["objective"])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.integers(2, 4), st.sampled_from(["int", "str", "float", "bool"]))
def test_classifier_labels_roundtrip_through_save_and_load(seed, n_classes, label_type):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 3))
    idx = np.r_[np.arange(n_classes), rng.integers(0, n_classes, 30 - n_classes)]
    labels = {"int": np.arange(n_classes) * 7 - 3, "str": np.array([f"c{i}" for i in range(n_classes)]),
              "float": np.arange(n_classes) + 0.0, "bool": np.array([False, True])}[label_type]
    assume(idx.max() < len(labels))
    y = labels[idx]
    clf = ConvexReLUClassifier(n_patterns=4, max_iter=30, random_state=seed).fit(X, y)
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and set(pred.tolist()) <= set(y.tolist()) and 0 <= clf.score(X, y) <= 1
    with tempfile.TemporaryDirectory() as tmp:
        clf.save(os.path.join(tmp, "m.npz"))
        again = admmnn.load(os.path.join(tmp, "m.npz"))
    np.testing.assert_array_equal(again.predict(X), pred)
    assert again.classes_.dtype == clf.classes_.dtype
