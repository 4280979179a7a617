"""admmnn.experiments.bench: the benchmark harness (arguments, atomic results, the paper's tables)
and the scripts in benchmarks/ that use it."""
import json
import os
import pathlib
import re

import numpy as np
import pytest

from admmnn.experiments import bench

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"

def make_parser():
    ap = bench.parser("test", quick=dict(n=5, solvers=["exact"]))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--solvers", nargs="+", default=["exact", "cg"])
    ap.add_argument("--beta", type=float, default=1e-3)
    return ap


def test_quick_replaces_only_the_options_left_at_their_default():
    ap = make_parser()
    assert vars(ap.parse_args([])) == dict(n=1000, solvers=["exact", "cg"], beta=1e-3, quick=False, out=None)
    assert vars(ap.parse_args(["--quick"])) == dict(n=5, solvers=["exact"], beta=1e-3, quick=True, out=None)
    args = ap.parse_args(["--quick", "--n", "7", "--out", "x"])
    assert (args.n, args.solvers, args.out) == (7, ["exact"], "x")


def test_out_is_a_folder_or_a_file_whose_stem_names_the_results(tmp_path):
    assert bench.resolve_out(None, tmp_path, "name") == (tmp_path, "name")
    assert bench.resolve_out(str(tmp_path / "d"), None, "name") == (tmp_path / "d", "name")
    assert bench.resolve_out(str(tmp_path / "other.json"), None, "name") == (tmp_path, "other")
    assert bench.resolve_out(str(tmp_path / "t.md"), None, "name") == (tmp_path, "t")


def test_results_writes_text_and_json_with_the_machine(tmp_path, capsys):
    args = make_parser().parse_args(["--quick", "--out", str(tmp_path / "r")])
    out = bench.Results("demo", args)
    out.say("line one")
    out.record["runs"] = [{"x": np.float64(1.5), "k": np.int64(3), "a": np.arange(2), "inf": float("inf")}]
    txt, js = out.write()
    assert (txt, js) == (tmp_path / "r" / "demo.txt", tmp_path / "r" / "demo.json")
    lines = txt.read_text().splitlines()
    assert lines[0].startswith("# demo: admmnn ") and "cores" in lines[0] and lines[0].endswith("QUICK (smallest settings)")
    assert lines[1:] == ["line one"]
    rec = json.loads(js.read_text())
    assert rec["runs"] == [{"x": 1.5, "k": 3, "a": [0, 1], "inf": float("inf")}]
    meta = rec["benchmark"]
    assert meta["name"] == "demo" and meta["quick"] is True and meta["args"]["n"] == 5 and "out" not in meta["args"]
    assert {"cpu", "cores", "gpu", "numpy", "admmnn", "date"} <= set(meta["machine"])
    assert "line one" in capsys.readouterr().out
    # a list is written as it is (the format of scripts that write lists)
    out.write([1, 2])
    assert json.loads(js.read_text()) == [1, 2]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "r.txt"
    bench.atomic_write(path, "old\n")

    def fail(*args):
        raise OSError("disk full (test)")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        bench.atomic_write(path, "new, half written")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["r.txt"]  # no temporary file left behind


def test_paper_tables_from_the_json_results(tmp_path):
    runs = [
        {"options": {"inner_tol": 1e-2, "inner_tol_power": 1.2}, "status": "max_iter", "n_iter": 600, "rel_gap": 0.496,
         "first": {"0.01": None, "0.001": None, "0.0001": None}, "inner": 4.538},
        {"options": {}, "status": "optimal", "n_iter": 290, "rel_gap": -3.4e-6, "first": {"0.01": 170}, "inner": 10.1},
        {"options": {"tol_fixed": 1e-8}, "status": "optimal", "n_iter": 210, "rel_gap": 1.4e-5, "first": {}, "inner": 7.8},
    ]
    (tmp_path / "inner_tolerance.json").write_text(json.dumps(
        {"n": 1000, "P": 10, "beta": 1e-3, "solver": "pcg-nystrom-block", "max_iter": 600, "runs": runs}))
    written = bench.paper_tables(tmp_path, tmp_path / "tables")  # exact_precompute.json missing: skipped
    assert sorted(pathlib.Path(p).name for p in written) == ["bench_inner_tolerance.tex", "benchmarks_macros.tex"]
    macros = dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}", (tmp_path / "tables" / "benchmarks_macros.tex").read_text()))
    assert macros["benchmarksInnerFormerGap"] == "0.50" and macros["benchmarksInnerFormerIters"] == "600"
    assert macros["benchmarksInnerFormerCg"] == "4.5" and macros["benchmarksInnerDefaultIters"] == "290"
    assert macros["benchmarksInnerBeta"] == "10^{-3}" and "benchmarksInnerTightIters" not in macros
    table = (tmp_path / "tables" / "bench_inner_tolerance.tex").read_text()
    assert r"$10^{-2}\,k^{-1.2}$ & 600 & max\_iter & 600 & 0.5" in table and "fixed $10^{-8}$" in table


SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_goes_through_the_harness_and_the_registry(script):
    text = script.read_text()
    assert "sys.path.insert" not in text and "read_idx" not in text and "gzip" not in text
    assert "from admmnn.experiments import bench" in text, "use the harness (admmnn.experiments.bench)"
    assert "bench.parser(" in text and "bench.Results(" in text


def test_make_benchmarks_runs_every_script():
    makefile = (BENCHMARKS.parent / "Makefile").read_text()
    runs = makefile.split("define BENCHMARK_RUNS\n", 1)[1].split("\nendef", 1)[0].splitlines()
    order = list(dict.fromkeys(line.split()[0] for line in runs if line.strip()))
    assert sorted(order) == sorted(p.name for p in SCRIPTS)
    assert order.index("sharded.py") < order.index("sharded_cost_model.py")  # the cost model reads sharded's json
