"""Files written by admmnn 0.1 before the core/experiments split (tests/core/fixtures, written
by fixtures/make_files.py with the code of that release) still load and work."""
import importlib.util
import pathlib

import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, ConvexReLURegressor, SolveResult, targets
from admmnn.result import Status

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
_spec = importlib.util.spec_from_file_location("make_files", FIXTURES / "make_files.py")
make_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_files)
X, Y, y, D = make_files.problem()
BETA = 1e-2


def objective(net, Xb, T):
    """0.5 ||f(X) - T||^2 + beta/2 ||weights||^2 of a ReLUNetwork."""
    return 0.5 * float(np.sum((np.asarray(net.predict(Xb)) - T.reshape(len(T), -1)) ** 2)) + net.penalty(BETA)


def test_a_saved_result_loads():
    res = admmnn.load(FIXTURES / "result_v0_1.npz")
    assert isinstance(res, SolveResult) and isinstance(res.status, Status) and res.n_iter == 40
    assert res.status == "max_iter" and res.solver == "exact" and res.state is not None
    assert res.objective == pytest.approx(objective(res.network, X, Y), rel=1e-10)
    assert res.dual_bound <= res.objective and res.history["iteration"][-1] == 40


def test_a_saved_checkpoint_resumes():
    fresh = admmnn.solve(X, Y, D, beta=BETA, solver="exact", max_iter=60, tol=1e-12)
    res = admmnn.solve(X, Y, D, beta=BETA, solver="exact", max_iter=60, tol=1e-12, resume=FIXTURES / "checkpoint_v0_1.npz")
    assert res.n_iter == 60 and 40 in res.history["iteration"].tolist()
    assert res.objective == pytest.approx(objective(res.network, X, Y), rel=1e-10)
    assert res.dual_bound <= res.objective * (1 + 1e-12)
    assert res.objective == pytest.approx(fresh.objective, rel=1e-6)


@pytest.mark.parametrize("Est, name", [(ConvexReLUClassifier, "classifier"), (ConvexReLURegressor, "regressor")])
def test_a_saved_estimator_loads_and_predicts(Est, name):
    est = Est.load(FIXTURES / f"{name}_v0_1.npz")
    assert est.n_features_in_ == 5 and est.result_.n_iter == 30
    Xb = np.c_[X, np.ones(len(X))]
    net = est.result_.network  # the network of the program, bias as a last input row
    np.testing.assert_allclose(np.asarray(est.network_.predict(X)), np.asarray(net.predict(Xb)), rtol=1e-12, atol=1e-12)
    if name == "classifier":
        assert est.classes_.tolist() == ["neg", "pos"]
        np.testing.assert_array_equal(est.predict(X), targets.decode(np.asarray(net.predict(Xb)), est.classes_))
        assert est.score(X, y) == np.mean(est.predict(X) == y)
    else:
        np.testing.assert_allclose(est.predict(X), np.asarray(net.predict(Xb))[:, 0], rtol=1e-12)
        assert est.score(X, Y) == pytest.approx(1 - np.sum((Y - est.predict(X)) ** 2) / np.sum((Y - Y.mean()) ** 2))
    assert est.result_.objective == pytest.approx(objective(net, Xb, targets.encode(y)[0] if name == "classifier" else Y), rel=1e-10)
