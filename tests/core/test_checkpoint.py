"""Checkpoints: resuming is bit-identical to a run never stopped; a checkpoint of another problem,
a failed write and bad arguments."""
import os

import numpy as np
import pytest

import admmnn
from admmnn import admm
from admmnn.checkpoint import CheckpointMismatchError
from admmnn.divergence import InterruptedSolveWarning
from admmnn.io import ModelFileError
from runs import KW, D, X, Y, assert_same_run, interrupt_at, run


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
