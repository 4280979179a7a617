"""Divergence: NaN/Inf or exploding iterates stop the solve with status "diverged" and the last
good iterate; the monitor's rules, without false alarms."""
import json

import numpy as np
import pytest

from admmnn import admm
from admmnn.divergence import DivergenceMonitor, DivergenceWarning
from runs import X, run


def inject(monkeypatch, phase, at, change):
    """Replace ``admm.<phase>`` by one that applies ``change`` to the state from call ``at`` on."""
    orig, calls = getattr(admm, phase), [0]

    def patched(*args, **kwargs):
        calls[0] += 1
        st = orig(*args, **kwargs)
        return change(st) if calls[0] >= at else st

    monkeypatch.setattr(admm, phase, patched)


def test_injected_nan_diverges_and_keeps_last_good_iterate(monkeypatch):
    inject(monkeypatch, "u_update", 25, lambda out: (out[0]._replace(u=out[0].u * np.nan), out[1]))
    with pytest.warns(DivergenceWarning, match=r"diverged at iteration 30: non-finite .*iteration 20.*Try: a larger rho"):
        res = run(100)
    assert res.status == "diverged" and res.n_iter == 20
    assert np.all(np.isfinite(res.v)) and all(np.all(np.isfinite(a)) for a in res.state)
    assert np.isfinite(res.objective) and res.objective >= res.dual_bound
    assert res.objective == res.history["objective"][list(res.history["iteration"]).index(20)]
    assert np.all(np.isfinite(res.network.predict(X)))


def test_exploding_iterates_diverge(monkeypatch):
    # the cone duals grow geometrically from iteration 40 on: the objective and residuals explode
    # (plain iterations: the Anderson safeguard would refuse most of these points)
    inject(monkeypatch, "dual_update", 40, lambda st: st._replace(nu=st.nu * 1.5 + 1e-3))
    with pytest.warns(DivergenceWarning, match="diverged at iteration"):
        res = run(600, anderson=0)
    assert res.status == "diverged" and res.n_iter < 600
    h = res.history
    assert np.all(np.isfinite(res.v)) and h["iteration"][-1] > res.n_iter  # the exploding check is in the history
    assert res.objective == h["objective"][list(h["iteration"]).index(res.n_iter)] < h["objective"][-1]


def metrics(r_pri, r_dual, objective=1.0, eps=1e-6):
    return {"objective": objective, "dual_bound": 0.0, "r_pri": r_pri, "r_dual": r_dual, "eps_pri": eps, "eps_dual": eps}


def test_monitor_residuals_growing_without_bound():
    mon = DivergenceMonitor(objective0=1.0, y_energy=1.0)
    reasons = [mon.update(metrics(1e-2 * 10.0**i, 0.0), rho=1.0) for i in range(8)]
    assert reasons[:4] == [None] * 4  # 1e-2 .. 10: rising, but not yet 1e4 times the lowest level
    assert "residuals grew without bound" in reasons[6]


def test_monitor_no_false_alarms():
    mon = DivergenceMonitor(objective0=1.0, y_energy=1.0)
    # noise around a tiny residual below tolerance, and one-off jumps: never divergence
    for i in range(50):
        assert mon.update(metrics(1e-9 * (1 + i % 3), 1e-9), rho=1.0) is None
    for level in (1e-3, 1e-4, 1e-2, 1e-5, 1e-1, 1e-6):
        assert mon.update(metrics(level, 0.0), rho=1.0) is None
    # the dual residual is measured relative to rho: a larger rho alone is no growth
    for rho in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0):
        assert mon.update(metrics(1e-3, 1e-3 * rho), rho=rho) is None
    assert "NaN" in mon.update(metrics(np.nan, 0.0), rho=1.0)
    assert "objective reached" in mon.update(metrics(1e-3, 0.0, objective=1e7), rho=1.0)


def test_monitor_state_roundtrips():
    mon = DivergenceMonitor(2.0, 1.0)
    mon.update(metrics(0.5, 0.1), 1.0)
    again = DivergenceMonitor.from_dict(json.loads(json.dumps(mon.to_dict())))
    assert vars(again) == vars(mon)
