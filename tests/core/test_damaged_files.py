"""Damaged files: a truncated or bit-flipped checkpoint, saved result or saved estimator, and a
checkpoint of another problem, are refused with a ModelFileError (a ValueError) that names the
file; never with zipfile's, NumPy's or any other exception, and never read as something else."""
import re
import warnings

import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, SolveResult, gaussian_patterns
from admmnn.checkpoint import CheckpointMismatchError
from admmnn.io import ModelFileError
from runs import assert_same_run

KW = dict(beta=1e-2, tol=1e-12)


def problem(n, seed):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.standard_normal((n, 4)), np.ones(n)]
    Y = np.maximum(X[:, 0] - X[:, 1], 0) + 0.1 * rng.standard_normal(n)
    return X, Y, gaussian_patterns(X, 4, seed=seed)[0]


X, Y, D = problem(40, seed=0)


def resume(path):
    """Go on for 10 iterations from a checkpoint written at iteration 20."""
    return admmnn.solve(X, Y, D, max_iter=30, resume=path, **KW)


def assert_same_estimator(a, b):
    assert a.get_params() == b.get_params()
    np.testing.assert_array_equal(a.classes_, b.classes_)
    np.testing.assert_array_equal(a.decision_function(X[:, :4]), b.decision_function(X[:, :4]))
    assert_same_run(a.result_, b.result_)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """kind -> (the file, how it is read, how two reads are compared): a real checkpoint, a saved
    SolveResult and a saved classifier."""
    folder = tmp_path_factory.mktemp("intact")
    ck = folder / "run.ckpt"
    admmnn.solve(X, Y, D, max_iter=20, checkpoint=ck, **KW).save(folder / "result.npz")
    clf = ConvexReLUClassifier(n_patterns=4, beta=1e-2, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 30 iterations: no matter here
        clf.fit(X[:, :4], np.where(X[:, 0] > 0, "yes", "no"))
    clf.save(folder / "clf.npz")
    return {
        "checkpoint": (ck, resume, assert_same_run),
        "result": (folder / "result.npz", SolveResult.load, assert_same_run),
        "estimator": (folder / "clf.npz", ConvexReLUClassifier.load, assert_same_estimator),
    }


KINDS = ["checkpoint", "result", "estimator"]


def refused(read, path, data, match):
    """Write ``data`` to ``path`` and read it: the ModelFileError's message, which names ``path``."""
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=match) as info:
        read(path)
    assert repr(str(path)) in str(info.value)
    return str(info.value)


def test_model_file_errors_are_value_errors():
    assert issubclass(ModelFileError, ValueError) and issubclass(CheckpointMismatchError, ModelFileError)


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_file_is_refused(files, kind, tmp_path):
    path, read, _ = files[kind]
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 1, 30):  # the zip directory stands at the end
        msg = refused(read, tmp_path / path.name, data[:keep], "is damaged")
        assert "BadZipFile" in msg, msg
    refused(read, tmp_path / path.name, b"", r"is empty \(0 bytes\)")


def flip_offsets(size):
    """Every 97th byte of the last 8 KiB (the metadata, the last entries' headers, the zip
    directory) and every 997th byte before."""
    tail = max(size - 8192, 0)
    return [*range(0, tail, 997), *range(tail, size, 97)]


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_bit_reads_the_same_or_is_refused(files, kind, tmp_path):
    path, read, assert_same = files[kind]
    data = path.read_bytes()
    intact = read(path)
    messages = []
    for offset in flip_offsets(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 1 << (offset % 8)
        bad = tmp_path / path.name
        bad.write_bytes(damaged)
        try:
            again = read(bad)
        except ModelFileError as exc:  # anything else fails the test
            assert repr(str(bad)) in str(exc), (offset, str(exc))
            messages.append(str(exc))
        else:  # a bit no reader looks at (a zip timestamp, say): everything reads the same
            assert_same(again, intact)
    assert len(messages) > len(flip_offsets(len(data))) // 2
    assert any("BadZipFile: Bad CRC-32" in m for m in messages)


def test_checkpoint_of_another_problem_is_refused(tmp_path):
    ck = tmp_path / "other.ckpt"
    X2, Y2, D2 = problem(30, seed=1)
    admmnn.solve(X2, Y2, D2, max_iter=10, checkpoint=ck, **KW)
    with pytest.raises(CheckpointMismatchError, match=re.escape(repr(str(ck))) + " was written for a different problem; these differ: X, Y, D"):
        resume(ck)
