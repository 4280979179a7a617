"""Reliability: divergence, interruption, checkpoints, the memory guard, saved models."""
import json
import os
import signal
import warnings
import zipfile

import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, ConvexReLURegressor, admm, gaussian_patterns, io, ustep
from admmnn.checkpoint import CheckpointMismatchError
from admmnn.divergence import DivergenceMonitor, DivergenceWarning, InterruptedSolveWarning
from admmnn.io import ModelFileError
from admmnn.memory import InsufficientMemoryError

rng = np.random.default_rng(0)
X = np.c_[rng.standard_normal((60, 5)), np.ones(60)]
Y = np.maximum(X[:, 0] - X[:, 1], 0) + 0.1 * rng.standard_normal(60)
D, _ = gaussian_patterns(X, 6, seed=0)
# a cone penalty 1e-4 times rho is far too weak, so the adaptive rule raises it during the runs below
KW = dict(beta=1e-2, rho=1e-3, rho_ratio=1e-4, tol=1e-12)


def run(max_iter, **kw):
    return admmnn.solve(X, Y, D, max_iter=max_iter, **{**KW, **kw})


# -- divergence ------------------------------------------------------------------------


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


# -- interruption ----------------------------------------------------------------------


def interrupt_at(k_stop):
    def callback(k, m, state):
        if k >= k_stop:
            raise KeyboardInterrupt

    return callback


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


# -- checkpoints -----------------------------------------------------------------------


def assert_same_run(a, b):
    for field in admm.ADMMState._fields:
        np.testing.assert_array_equal(getattr(a.state, field), getattr(b.state, field), err_msg=field)
    assert a.rho == b.rho and a.n_iter == b.n_iter and a.objective == b.objective and a.dual_bound == b.dual_bound
    assert set(a.history) == set(b.history)
    for key in a.history:
        if key != "time" and not key.startswith("seconds_"):  # wall-clock values differ
            np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)


def test_resume_is_bit_identical(tmp_path):
    ck = tmp_path / "run.ckpt"
    full = run(200)
    assert len(np.unique(full.history["rho_ratio"])) > 1  # the cone penalty changes: the checkpoint must carry it
    part = run(110, checkpoint=ck, checkpoint_every=30)
    assert part.n_iter == 110 and ck.exists()
    assert_same_run(run(200, resume=ck), full)
    # no temporary files are left beside the checkpoint
    assert os.listdir(tmp_path) == ["run.ckpt"]


def test_resume_after_interruption_is_bit_identical(tmp_path):
    ck = str(tmp_path / "run.npz")
    with pytest.warns(InterruptedSolveWarning):
        run(200, checkpoint=ck, checkpoint_every=1000, callback=interrupt_at(70))
    assert_same_run(run(200, resume=ck), run(200))


def test_checkpoint_keeps_the_returned_iterate(tmp_path):
    # interrupted by the callback at iteration 70: the loop would go on from iteration 60
    # (its last completed check), while the result reports the iterate checked at 70
    ck = tmp_path / "run.npz"
    with pytest.warns(InterruptedSolveWarning):
        stopped = run(200, checkpoint=ck, callback=interrupt_at(70))
    again = run(60, resume=ck)  # nothing left to do: the checkpoint's result comes back
    for field in admm.ADMMState._fields:
        np.testing.assert_array_equal(getattr(again.state, field), getattr(stopped.state, field), err_msg=field)
    assert (again.n_iter, again.objective, again.dual_bound, again.rho) == (70, stopped.objective, stopped.dual_bound, stopped.rho)


def test_foreign_checkpoint_is_refused(tmp_path):
    ck = tmp_path / "run.ckpt"
    run(20, checkpoint=ck)
    with pytest.raises(CheckpointMismatchError, match=r"different problem; these differ: Y\b"):
        admmnn.solve(X, Y + 1, D, max_iter=40, resume=ck, **KW)
    with pytest.raises(ValueError, match=r"these differ: X, D\b"):
        admmnn.solve(X[::-1], Y, D[::-1], max_iter=40, resume=ck, **KW)
    with pytest.raises(ValueError, match=r"beta \(checkpoint 0.01, now 0.02\)"):
        admmnn.solve(X, Y, D, max_iter=40, resume=ck, **{**KW, "beta": 2e-2})
    with pytest.raises(ModelFileError, match="holds a 'SolveResult', expected one of \\['checkpoint'\\]"):
        res = run(20)
        res.save(tmp_path / "result.npz")
        run(40, resume=tmp_path / "result.npz")


def test_failed_checkpoint_write_warns_and_goes_on(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(admmnn.checkpoint, "write_npz", full_disk)
    with pytest.warns(RuntimeWarning, match="could not write checkpoint .* No space left"):
        res = run(60, checkpoint=tmp_path / "c.npz", checkpoint_every=20)
    assert res.status == "max_iter" and res.n_iter == 60 and not os.listdir(tmp_path)


def test_checkpoint_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="either resume= .* or warm_start="):
        run(20, resume=tmp_path / "a", warm_start=run(10))
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        run(20, checkpoint=tmp_path / "a", checkpoint_every=0)
    with pytest.raises(TypeError, match="checkpoint must be a file path"):
        run(20, checkpoint=3)
    with pytest.raises(ValueError, match="folder .* does not exist"):
        run(20, checkpoint=tmp_path / "missing" / "a.npz")
    with pytest.raises(FileNotFoundError):
        run(20, resume=tmp_path / "missing.npz")


# -- memory guard ----------------------------------------------------------------------


def test_memory_guard_auto_picks_matrix_free():
    assert run(10, solver="auto").solver == "exact"
    budget = admmnn.memory.iterate_bytes(60, 6, 12) + ustep.exact_bytes(60, 6) - 1
    res = run(10, solver="auto", memory_budget=budget)
    assert res.solver != "exact" and res.solver == res.info["auto"]["solver"]
    assert "exact" in res.info["auto"]["excluded"] and "memory budget" in res.info["auto"]["reason"]
    assert run(10, solver="auto", memory_budget=budget + 1).solver == "exact"


def test_memory_guard_auto_without_matrix_free_solver(monkeypatch):
    monkeypatch.setattr(ustep, "SOLVERS", {"exact": ustep.ExactSolver})
    with pytest.raises(InsufficientMemoryError, match="no matrix-free solver is installed"):
        run(10, solver="auto", memory_budget=60_000)


def test_memory_guard_exact_refuses_before_allocating(monkeypatch):
    built = []
    monkeypatch.setattr(ustep.ExactSolver, "__init__", lambda self, *a, **k: built.append(1))
    with pytest.raises(MemoryError, match=r"solver='exact' needs about 90\.56 KiB for its n x n factor \(n=60\).*"
                       r"nothing was allocated.*solver='auto'"):
        run(10, solver="exact", memory_budget=50_000)
    # without a budget, the free memory of the device (here: the host) is the limit
    monkeypatch.setattr(admmnn.memory, "free_bytes", lambda ref=None: (40_000, "of host memory available"))
    with pytest.raises(ValueError, match="only 39.06 KiB are of host memory available"):
        run(10, solver="exact")
    assert not built


def test_memory_guard_iterates(monkeypatch):
    with pytest.raises(InsufficientMemoryError, match="the ADMM iterates alone need about"):
        run(10, solver="exact", memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        run(10, memory_budget=-1)


# -- saved models ----------------------------------------------------------------------


def fitted_classifier():
    y = np.where(X[:, 0] * X[:, 1] > 0, "yes", "no")
    return ConvexReLUClassifier(n_patterns=5, beta=1e-2, max_iter=100).fit(X[:, :5], y), y


def test_save_load_classifier_roundtrip(tmp_path):
    clf, y = fitted_classifier()
    clf.save(tmp_path / "clf.npz")
    again = ConvexReLUClassifier.load(tmp_path / "clf.npz")
    assert type(again) is ConvexReLUClassifier and again.get_params() == clf.get_params()
    np.testing.assert_array_equal(again.predict(X[:, :5]), clf.predict(X[:, :5]))
    np.testing.assert_array_equal(again.decision_function(X[:, :5]), clf.decision_function(X[:, :5]))
    assert again.classes_.tolist() == ["no", "yes"] and again.score(X[:, :5], y) == clf.score(X[:, :5], y)
    np.testing.assert_array_equal(again.patterns_, clf.patterns_)
    assert again.result_.objective == clf.result_.objective and again.result_.status == clf.result_.status
    # a loaded result can warm-start a new fit
    again.set_params(warm_start=True, max_iter=10).fit(X[:, :5], y)


def test_save_load_regressor_and_result(tmp_path):
    reg = ConvexReLURegressor(n_patterns=4, max_iter=60).fit(X[:, :5], np.c_[Y, -Y])
    admmnn.save(reg, tmp_path / "reg.npz")
    again = admmnn.load(tmp_path / "reg.npz")
    np.testing.assert_array_equal(again.predict(X[:, :5]), reg.predict(X[:, :5]))
    res = run(50)
    res.save(tmp_path / "res.npz")
    back = admmnn.SolveResult.load(tmp_path / "res.npz")
    np.testing.assert_array_equal(back.network.predict(X), res.network.predict(X))
    assert back.gap == res.gap and back.history.keys() == res.history.keys()
    # a loaded result warm-starts solve like the original
    assert_same_run(admmnn.solve(X, Y, D, max_iter=60, warm_start=back, **KW), admmnn.solve(X, Y, D, max_iter=60, warm_start=res, **KW))
    with pytest.raises(ModelFileError, match="holds a 'SolveResult', expected one of \\['ConvexReLURegressor'\\]"):
        ConvexReLURegressor.load(tmp_path / "res.npz")


def test_load_on_torch_backend(tmp_path):
    torch = pytest.importorskip("torch")
    clf, _ = fitted_classifier()
    clf.save(tmp_path / "clf.npz")
    again = ConvexReLUClassifier.load(tmp_path / "clf.npz", backend="torch")
    assert again.backend == "torch" and isinstance(again.network_.W1, torch.Tensor)
    np.testing.assert_allclose(again.decision_function(X[:, :5]), clf.decision_function(X[:, :5]), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="backend must be one of"):
        admmnn.load(tmp_path / "clf.npz", backend="tensorflow")


def rewrite(path, change_meta=None, arrays_extra=None, fix_checksum=False):
    """Rewrite a saved file with its metadata changed (like an editor or an attacker would)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop(io.META_KEY)))
    if change_meta:
        change_meta(meta)
    arrays.update(arrays_extra or {})
    if fix_checksum:
        meta["checksum"] = io._checksum(arrays, meta)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, **{io.META_KEY: np.asarray(json.dumps(meta))})


def test_tampered_files_are_refused(tmp_path):
    clf, _ = fitted_classifier()
    path = tmp_path / "clf.npz"

    def fresh():
        clf.save(path)
        return path

    rewrite(fresh(), lambda m: m["params"].update(beta=5.0))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        admmnn.load(path)
    rewrite(fresh(), lambda m: m.update(admmnn_version="0.2.0"), fix_checksum=True)
    with pytest.raises(ModelFileError, match=r"written by admmnn 0.2.0 \(file format 1\), newer than this admmnn 0.1.0 .*upgrade"):
        admmnn.load(path)
    rewrite(fresh(), lambda m: m.update(admmnn_version="0.1.7"), fix_checksum=True)
    admmnn.load(path)  # a patch release of the same minor version loads
    rewrite(fresh(), lambda m: m.update(kind="os.system"), fix_checksum=True)
    with pytest.raises(ModelFileError, match="holds a 'os.system'"):
        admmnn.load(path)
    rewrite(fresh(), lambda m: m["params"].update(evil=1), fix_checksum=True)
    with pytest.raises(ModelFileError, match=r"parameters \['evil'\]"):
        admmnn.load(path)
    rewrite(fresh(), arrays_extra={"network/W1": np.zeros((5, 1))})
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        admmnn.load(path)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="not an admmnn file"):
        admmnn.load(tmp_path / "plain.npy")


def test_no_pickle_on_save_or_load(tmp_path):
    clf, _ = fitted_classifier()
    path = tmp_path / "clf.npz"
    clf.save(path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            header = z.read(name)[:200]
            assert b"'descr': '|O'" not in header and b"'descr': 'O'" not in header, name
    with np.load(path, allow_pickle=False) as f:  # every entry reads without pickle
        [f[k] for k in f.files]
    # an object array (which only pickle can read) is refused before anything runs
    rewrite(path, arrays_extra={"payload": np.array([print], dtype=object)}, fix_checksum=False)
    with pytest.raises(ModelFileError, match="cannot be read without pickle"):
        admmnn.load(path)


def test_save_refuses_what_needs_pickle(tmp_path):
    with pytest.raises(Exception, match="not fitted"):
        ConvexReLUClassifier().save(tmp_path / "x.npz")
    clf, _ = fitted_classifier()
    clf.set_params(random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="random_state = Generator.* cannot be saved"):
        clf.save(tmp_path / "x.npz")
    with pytest.raises(TypeError, match="save expects a SolveResult"):
        admmnn.save({"a": 1}, tmp_path / "x.npz")
    assert not os.path.exists(tmp_path / "x.npz")


def test_memory_guard_reads_gpu_memory_for_cuda_arrays(monkeypatch):
    torch = pytest.importorskip("torch")

    class CudaArray:  # what the guard looks at on a CUDA tensor
        is_cuda, device = True, "cuda:0"

    asked = []
    monkeypatch.setattr(admmnn._backend, "is_torch_array", lambda x: isinstance(x, CudaArray))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: asked.append(device) or (50_000, 80 << 30))
    assert admmnn.memory.free_bytes(CudaArray()) == (50_000, "free on cuda:0") and asked == ["cuda:0"]
    with pytest.raises(InsufficientMemoryError, match="only 48.83 KiB are free on cuda:0"):
        admmnn.memory.resolve_solver("exact", 60, 6, 12, 8, None, CudaArray())
    assert admmnn.memory.resolve_solver("exact", 10, 6, 12, 8, None, CudaArray()).solver == "exact"
