"""The small problem that the divergence, interruption, checkpoint, memory-guard and
save/load tests solve, and the helpers they share."""
import numpy as np

import admmnn
from admmnn import admm, gaussian_patterns

rng = np.random.default_rng(0)
X = np.c_[rng.standard_normal((60, 5)), np.ones(60)]
Y = np.maximum(X[:, 0] - X[:, 1], 0) + 0.1 * rng.standard_normal(60)
D, _ = gaussian_patterns(X, 6, seed=0)
# a cone penalty 1e-4 times rho is far too weak, so the adaptive rule raises it during the runs below
# ADMM alone (polish=False): these tests follow its iterates; the endgame has its own in test_endgame
KW = dict(beta=1e-2, rho=1e-3, rho_ratio=1e-4, tol=1e-12, polish=False)


def run(max_iter, **kw):
    return admmnn.solve(X, Y, D, max_iter=max_iter, **{**KW, **kw})


def interrupt_at(k_stop):
    def callback(k, m, state):
        if k >= k_stop:
            raise KeyboardInterrupt

    return callback


def assert_same_run(a, b):
    for field in admm.ADMMState._fields:
        np.testing.assert_array_equal(getattr(a.state, field), getattr(b.state, field), err_msg=field)
    assert a.rho == b.rho and a.n_iter == b.n_iter and a.objective == b.objective and a.dual_bound == b.dual_bound
    assert set(a.history) == set(b.history)
    for key in a.history:
        if key != "time" and not key.startswith("seconds_"):  # wall-clock values differ
            np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)
