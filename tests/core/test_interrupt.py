"""Interruption: Ctrl-C (a KeyboardInterrupt from the callback, a real SIGINT, one in the middle
of an iteration) returns the last checked iterate with status "interrupted"."""
import os
import signal

import numpy as np
import pytest

from admmnn import ConvexReLUClassifier, admm
from admmnn.divergence import InterruptedSolveWarning
from runs import X, interrupt_at, run


def test_interrupt_from_callback_returns_partial_result():
    with pytest.warns(InterruptedSolveWarning, match="interrupted.*iteration 50"):
        res = run(500, callback=interrupt_at(50))
    full = run(50)
    assert res.status == "interrupted" and res.n_iter == 50
    np.testing.assert_array_equal(res.v, full.v)  # the iterate the callback saw
    assert res.objective == full.objective and res.dual_bound == full.dual_bound
    assert res.dual_bound <= res.objective and np.isfinite(res.gap)
    assert len({len(v) for v in res.history.values()}) == 1


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="POSIX signals")
def test_real_ctrl_c_at_a_known_check():
    # a real SIGINT, as Ctrl-C sends it, sent by the process to itself from the callback of the
    # check at iteration 30: Python's handler raises KeyboardInterrupt there (no timer, no race)
    seen = []

    def ctrl_c_at_30(k, m, state):
        seen.append(k)
        if k == 30:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.warns(InterruptedSolveWarning, match="interrupted.*from iteration 30"):
        res = run(500, callback=ctrl_c_at_30)
    assert res.status == "interrupted" and res.n_iter == 30 and seen == [10, 20, 30]
    k = list(res.history["iteration"]).index(res.n_iter)
    assert np.all(np.isfinite(res.v)) and np.isfinite(res.gap)
    assert (res.objective, res.dual_bound) == (res.history["objective"][k], res.history["dual_bound"][k])


def test_interrupt_mid_iteration_keeps_estimator_fitted(monkeypatch):
    Xc, yc = X[:, :5], (X[:, 0] * X[:, 1] > 0).astype(int)
    # Ctrl-C between two checks, in the middle of an iteration (during the 35th dual update)
    orig, calls = admm.dual_update, [0]

    def dual_update(*args):
        calls[0] += 1
        if calls[0] == 35:
            raise KeyboardInterrupt
        return orig(*args)

    monkeypatch.setattr(admm, "dual_update", dual_update)
    clf = ConvexReLUClassifier(n_patterns=5, max_iter=500)
    with pytest.warns(InterruptedSolveWarning):
        clf.fit(Xc, yc)
    assert clf.result_.status == "interrupted" and clf.result_.n_iter == 30
    assert clf.predict(Xc).shape == (60,) and 0 <= clf.score(Xc, yc) <= 1
