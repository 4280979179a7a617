"""The comparison command line, ``python -m admmnn.experiments.compare``, on scikit-learn's digits."""
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from admmnn.experiments import compare, data

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

ARGS = [
    "--dataset", "digits", "--GD", "1", "--CVX", "1", "--ADMM", "1", "--n_epochs", "12", "8",
    "--solver_cvx", "adam", "--seed", "0", "--n_train", "300", "--n_test", "150", "--n_patterns", "6",
    "--beta", "1e-2", "--batch_size", "100", "--lr_cvx", "1e-2", "--admm_max_iter", "150",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    results = compare.main(ARGS + ["--out", str(out)])
    return out, results


def test_saves_results_and_plots(run):
    out, results = run
    saved = torch.load(out / "results.pt")
    with open(out / "results.json") as fh:
        assert json.load(fh) == saved
    assert saved["args"]["n_epochs"] == [12, 8] and saved["dataset"]["n_train"] == 300
    assert saved["problem"] == {"P": 6, "C": 10, "beta": 0.01, "classification": True}
    for method, epochs in (("GD", 12), ("CVX", 8)):
        h = saved[method]
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "objective", "time", "epoch_time"):
            assert len(h[key]) == epochs + 1, (method, key)
        assert h["epoch"] == list(range(epochs + 1)) and h["time"][-1] > 0
        assert h["objective"][-1] < h["objective"][0]
        assert 0.5 < h["test_accuracy"][-1] <= 1  # ten classes: chance is 0.1
    assert "violation" in saved["CVX"] and saved["GD"]["info"]["width"] == saved["ADMM"]["final"]["width"]
    admm = saved["ADMM"]
    assert len(admm["iteration"]) == len(admm["objective"]) == len(admm["test_accuracy"]) >= 10
    assert np.all(np.diff(admm["time"]) > 0)
    for name in ("compare_epoch.png", "compare_time.png"):
        blob = (out / name).read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 20_000


def test_methods_are_scored_on_the_same_function(run):
    _, results = run
    admm = results["ADMM"]["final"]
    # the network returned (the endgame's point when it is better) is at least as good as the
    # last iterate the per-epoch log scored with the shared evaluation
    assert admm["objective"] <= np.asarray(results["ADMM"]["objective"])[-1] * (1 + 1e-9)
    assert admm["dual_bound"] <= admm["objective"]
    # a few epochs of gradient training stay above the convex optimum over these patterns
    assert admm["objective"] < results["CVX"]["objective"][-1]
    assert admm["objective"] < results["GD"]["objective"][-1]
    table = compare.summary_table(results)
    assert len(table.splitlines()) == 4 and "convex, ADMM" in table


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--n_epochs", "0", "5"], "--n_epochs"),
        (["--n_epochs", "5"], "--n_epochs"),
        (["--dataset", "imagenet"], "--dataset"),
        (["--GD", "2"], "--GD"),
        (["--beta", "-1"], "--beta"),
        (["--solver_cvx", "lbfgs"], "--solver_cvx"),
        (["--GD", "0", "--CVX", "0"], "nothing to run"),
        (["--dataset", "digits", "--classes", "cat"], "classes"),
        (["--dataset", "digits", "--n_train", "5000"], "n_train"),
        (["--dataset", "synthetic", "--patterns", "conv"], "--patterns conv"),
    ],
)
def test_invalid_arguments_are_argparse_errors(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main(argv + ["--out", "/nonexistent/never-written"])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", ())
    with pytest.raises(SystemExit) as info:
        compare.main(["--dataset", "cifar10", "--root", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" not in err
    assert "CIFAR-10 is not available" in err and str(tmp_path / "cifar-10-batches-py") in err
    assert not (tmp_path / "out").exists()


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "admmnn.experiments.compare", "--n_epochs", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--n_epochs" in proc.stderr and "usage: python -m admmnn.experiments.compare" in proc.stderr
