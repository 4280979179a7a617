"""The compendium's glue: LaTeX tables and macros (admmnn.experiments.report) and figures (admmnn.experiments.plots)."""
import math
import re
import types

import numpy as np
import pytest

import admmnn
from admmnn.experiments import report


def test_macro_names_are_letters_only():
    assert report.macro_name("tutorial", "test acc") == "tutorialTestAcc"
    assert report.macro_name("jax_vs_cpu", "exact jax (gpu)", "ms per iteration") == "jaxVsCpuExactJaxGpuMsPerIteration"
    assert report.macro_name("cifar10_benchmark") == "cifarTenBenchmark"
    assert report.macro_name("p128") == "pOneTwoEight"
    with pytest.raises(ValueError):
        report.macro_name("--")


@pytest.mark.parametrize(
    "value, text",
    [(0.95, "0.95"), (3, "3"), (12.3456, "12.3"), (1e-5, "$10^{-5}$"), (2.5e-7, r"$2.5\times10^{-7}$"),
     (123456.0, r"$1.23\times10^{5}$"), (-1e-6, "$-10^{-6}$"), (0.0, "0"), (None, "--"), (math.nan, "--"),
     ("max_iter", r"max\_iter"), (True, "yes"), (np.float64(0.5), "0.5"), (np.int64(7), "7")],
)
def test_fmt_number(value, text):
    assert report.fmt_number(value) == text


def test_tabular_is_booktabs_with_escaped_cells():
    rows = [{"backend": "numpy", "s": 0.0123, "gap": None}, {"backend": "jax_gpu", "s": 2e-4, "gap": 0.5}]
    text = report.tabular(rows, [("backend", "backend"), ("s", "s / it", "{:.4f}"), ("gap", "gap")])
    lines = text.strip().splitlines()
    assert lines[0] == r"\begin{tabular}{lrr}" and lines[-1] == r"\end{tabular}"
    assert r"\toprule" in lines and r"\midrule" in lines and r"\bottomrule" in lines
    assert r"numpy & 0.0123 & -- \\" in lines
    assert r"jax\_gpu & 0.0002 & 0.5 \\" in lines


def test_outputs_write_macros_tables_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = report.Outputs("my_notebook", output_dir=str(tmp_path / "out"), paper_dir=str(tmp_path / "paper"))
    out.describe("digits")
    assert out.macro("test acc", 95.04, "{:.1f}") == "95.0"
    out.table("my_table", [{"a": 1}], [("a", "A")])
    fig, ax = plt.subplots()
    out.figure(fig, "my_figure")
    plt.close(fig)
    macros = (tmp_path / "paper" / "tables" / "my_notebook_macros.tex").read_text()
    assert r"\newcommand{\myNotebookTestAcc}{95.0}" in macros
    assert r"\newcommand{\myNotebookDataset}{digits}" in macros
    names = re.findall(r"\\newcommand\{\\([^}]*)\}", macros)
    assert names == sorted(names) and all(n.isalpha() for n in names)
    assert (tmp_path / "out" / "my_notebook_macros.tex").read_text() == macros
    assert (tmp_path / "paper" / "tables" / "my_table.tex").exists()
    assert (tmp_path / "paper" / "figures" / "my_figure.pdf").stat().st_size > 0
    assert (tmp_path / "out" / "my_figure.png").stat().st_size > 0


def test_outputs_without_paper_dir_write_only_output_dir(tmp_path):
    out = report.Outputs("nb", output_dir=str(tmp_path / "out"))
    out.macro("x", 1)
    assert (tmp_path / "out" / "nb_macros.tex").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_machine_description():
    info = report.machine()
    assert info["cores"] >= 1 and info["cpu"]
    text = report.machine_text(info)
    assert f"{info['cores']} cores" in text and ("GPU" in text)


def test_load_data_digits_standardises_once_with_training_rows():
    pytest.importorskip("sklearn")
    Xtr, ytr, Xv, yv, Xte, yte = report.load_data("digits", n_val=100, seed=0)
    assert Xtr.shape[1] == Xv.shape[1] == Xte.shape[1] == 64
    assert len(Xv) == len(yv) == 100 and len(Xtr) + 100 + len(Xte) == 1797
    assert np.allclose(Xtr.mean(axis=0), 0, atol=1e-8)
    varying = Xtr.std(axis=0) > 0
    assert np.allclose(Xtr.std(axis=0)[varying], 1) and np.all(Xtr[:, ~varying] == 0)
    Xtr, ytr, Xv, yv, Xte, yte = report.load_data("digits", n_train=50, n_test=20, classes=[0, 6])
    assert Xtr.shape == (50, 64) and len(yte) == 20 and set(np.unique(ytr)) == {0, 1} and len(Xv) == 0  # labels 0..k-1
    # a pixel constant over the 50 training rows is shifted, never divided by ~0
    assert np.abs(Xte).max() < 1e3


def test_load_data_reads_the_data_module(monkeypatch):
    calls = []

    def load_dataset(name, classes=None, n_train=None, n_test=None, seed=0, downsample=1, standardize=True):
        calls.append((name, classes, n_train, n_test, seed, standardize))
        rng = np.random.default_rng(seed)
        return types.SimpleNamespace(X_train=rng.standard_normal((n_train, 3, 2, 2)), y_train=np.arange(n_train) % 2,
                                     X_test=rng.standard_normal((n_test, 3, 2, 2)), y_test=np.arange(n_test) % 2)

    monkeypatch.setattr(report, "load_dataset", load_dataset)
    Xtr, ytr, Xv, yv, Xte, yte = report.load_data("cifar10", n_train=30, n_val=10, n_test=5, classes=[0, 1], seed=3)
    assert calls == [("cifar10", [0, 1], 40, 5, 3, False)]
    assert Xtr.shape == (30, 12) and Xv.shape == (10, 12) and Xte.shape == (5, 12)
    assert np.allclose(Xtr.mean(axis=0), 0, atol=1e-8)


@pytest.fixture
def small_result():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((40, 4)), np.ones(40)]
    y = np.sign(rng.standard_normal(40))
    D, _ = admmnn.gaussian_patterns(X, 4, seed=0)
    return admmnn.solve(X, y, D, beta=0.1, max_iter=60, check_every=5)


def test_plots_draw_every_kind_of_figure(small_result):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from admmnn.experiments import plots

    fig = plots.convergence({"numpy": small_result, "again": small_result.history})
    axes = fig.axes
    assert len(axes) == 4 and axes[0].get_yscale() == "log"
    assert axes[2].get_xlabel() == "ADMM iteration" and "wall time" in axes[3].get_xlabel()
    fig = plots.time_breakdown({"exact": small_result.timings})
    assert fig.axes[0].get_xlabel() == "wall time (s)"
    fig = plots.accuracy([1e-3, 1e-2, 1e-1, 1], {"train": [1, 1, 0.9, 0.5]}, "beta", mark=1e-2)
    assert fig.axes[0].get_xscale() == "log"
    fig = plots.condition_numbers([5, 10, 20], {"A": 1e6, "Nyström": [1e4, 1e2, 10.0]})
    assert fig.axes[0].get_yscale() == "log"
    rows = [{"solver": "exact", "backend": "numpy", "seconds_per_iteration": 0.1},
            {"solver": "exact", "backend": "jax", "seconds_per_iteration": 0.001}]
    fig = plots.seconds_per_iteration(rows)
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_ylabel() == "seconds per ADMM iteration"
    fig = plots.seconds_per_iteration(rows * 7, width=6.5)  # drawn at the width it is printed at
    assert tuple(fig.get_size_inches()) == (6.5, 3.3)
    panels = {f"solver {i}": {"numpy": small_result, "jax": small_result.history} for i in range(5)}
    fig = plots.convergence_grid(panels, x="time", ncols=4, width=1.7, height=1.8)
    assert tuple(fig.get_size_inches()) == pytest.approx((4 * 1.7, 2 * 1.8))
    drawn = [a for a in fig.axes if a.axison]
    assert len(drawn) == 5 and all(a.get_yscale() == "log" for a in drawn)
    assert [a.get_xlabel() for a in drawn] == ["", "wall time (s)", "wall time (s)", "wall time (s)", "wall time (s)"]
    plt.close("all")


def test_positive_masks_values_a_log_axis_cannot_show():
    from admmnn.experiments import plots

    out = plots.positive([1.0, 0.0, -2.0, 3.0])
    assert out[0] == 1 and np.isnan(out[1]) and np.isnan(out[2]) and out[3] == 3
    assert plots.spans_decades([1e-3, 1.0]) and not plots.spans_decades([1.0, 2.0])
