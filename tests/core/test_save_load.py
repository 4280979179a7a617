"""Saving and loading results and estimators: round trips (NumPy and torch), tampered files,
no pickle on either side."""
import json
import os
import zipfile

import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, ConvexReLURegressor, io
from admmnn.io import ModelFileError
from runs import KW, D, X, Y, assert_same_run, run


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
