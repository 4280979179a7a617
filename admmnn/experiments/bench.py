"""The benchmark harness: what every script in ``benchmarks/`` shares.

A script declares its smallest settings, parses its arguments, says its lines and writes
its results through one ``Results``::

    from admmnn.experiments import bench
    from admmnn.experiments.problems import problem

    ap = bench.parser(__doc__, quick=dict(n=200, max_iter=50))  # adds --quick and --out
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--max-iter", type=int, default=2000)
    args = ap.parse_args(argv)            # --quick: the quick values for options left at their default
    out = bench.Results("my_bench", args, __file__)   # prints the header (machine, versions, commit)
    with bench.Timer() as t:
        ...
    out.say(f"solved in {t.seconds:.2f} s")           # printed, and a line of my_bench.txt
    out.record["runs"] = rows                         # my_bench.json
    out.write()                                       # both files, atomically

``--out`` is a folder (default: the script's ``results/``, i.e. ``benchmarks/results``) or a
file name ending in ``.txt``, ``.json`` or ``.md``, whose stem then names both files. Files
are written to a temporary name and renamed, so a crash leaves the previous results (or
none), never a half-written file or a traceback. ``make benchmarks`` runs every script
(``QUICK=1``: with ``--quick``, into ``outputs/benchmarks_quick``), then
``python -m admmnn.experiments.bench tables`` writes the paper's tables and macros from the
JSON results (``paper_tables``).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import atomic_file
from . import report

TEXT_SUFFIXES = (".txt", ".json", ".md")
#: the default results folder (the checkout's benchmarks/results)
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


# -- arguments ------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with ``--quick`` and ``--out``; with ``--quick``, every option
    named in ``quick`` that was left at its default takes the quick value instead."""

    def __init__(self, *args, quick: dict | None = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.quick = dict(quick or {})
        self.add_argument("--quick", action="store_true",
                          help="the smallest settings, a smoke run of seconds to a minute"
                          + (f" ({', '.join(f'{k}={v}' for k, v in self.quick.items())})" if self.quick else ""))
        self.add_argument("--out", default=None,
                          help="results folder (default: benchmarks/results), or a file name ending in "
                               ".txt/.json/.md whose stem names the results")

    def parse_args(self, args=None, namespace=None):
        ns = super().parse_args(args, namespace)
        if getattr(ns, "quick", False):
            for key, value in self.quick.items():
                if not hasattr(ns, key):
                    raise AttributeError(f"quick setting {key!r} is not an option of this script")
                if getattr(ns, key) == self.get_default(key):
                    setattr(ns, key, value)
        return ns


def parser(description: str | None = None, quick: dict | None = None, **kwargs) -> Parser:
    """The parser of a benchmark script: ``--quick`` (the settings ``quick``, by option
    name as in ``args``) and ``--out`` come with it."""
    return Parser(description=description, quick=quick, **kwargs)


# -- the machine ------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpus() -> str:
    """GPU names from ``nvidia-smi`` (no torch or JAX import: those take seconds)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "none"
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return "none"
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return ", ".join(names) if out.returncode == 0 and names else "none"


def _git(where: Path) -> str | None:
    """The checkout's short commit, ``+`` when its files differ from it (None outside git)."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=20)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20)
        return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    """What produces the numbers, cheaply: CPU, cores, memory, GPUs, library versions
    (from the installed metadata), threads, load, commit and time."""
    info = {"cpu": report.cpu_name(), "cores": os.cpu_count() or 1}
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    info["gpu"] = _gpus()
    info["python"] = sys.version.split()[0]
    info["admmnn"] = __version__
    for dist in ("numpy", "scipy", "torch", "jax"):
        info[dist] = _version(dist) or "absent"
    info["threads"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                       if k in os.environ}
    try:
        info["load_average"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    info["commit"] = _git(Path(__file__).resolve().parent)
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def machine_line(info: dict) -> str:
    """One line: ``admmnn 0.1.0 (git d4381fe), date, CPU, cores, memory, GPU; versions; threads; load``."""
    commit = f" (git {info['commit']})" if info.get("commit") else ""
    libs = ", ".join(f"{k} {info[k]}" for k in ("numpy", "scipy", "torch", "jax") if info.get(k, "absent") != "absent")
    threads = " ".join(f"{k}={v}" for k, v in info.get("threads", {}).items()) or "default threads"
    load = f"; load average {info['load_average']:g}" if "load_average" in info else ""
    return f"admmnn {info['admmnn']}{commit}, {info['date']}, {report.machine_text(info)}; {libs}; {threads}{load}"


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


#: the optional peers of the benchmarks: (module, distribution, extra of admmnn that installs it)
PEERS = {"clarabel": ("cvxpy", "cvxpy and clarabel", "test"), "scnn": ("scnn", "pyscnn", "bench"),
         "torch": ("torch", "torch", "torch"), "jax": ("jax", "jax", "jax")}


def missing(peer: str) -> str | None:
    """Why ``peer`` (a key of ``PEERS``) cannot run here, or None when it can."""
    module, dist, extra = PEERS[peer]
    return None if available(module) else f"{dist} is not installed (pip install admmnn[{extra}])"


# -- files ---------------------------------------------------------------------------------
def atomic_write(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename:
    readers (and a crash) see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return path


def _plain(obj):
    """JSON for what ``json`` does not know: NumPy scalars and arrays, paths, the rest as text."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def to_json(data) -> str:
    return json.dumps(data, indent=1, default=_plain) + "\n"


def resolve_out(out, default_dir, name: str) -> tuple[Path, str]:
    """(folder, stem) of the results: ``out`` a folder, or a file whose stem names them."""
    if out is None:
        return Path(default_dir), name
    out = Path(out)
    if out.suffix in TEXT_SUFFIXES:
        return out.parent, out.stem
    return out, name


def shown(path) -> str:
    """``path`` relative to the working folder when inside it (as files name each other), else absolute."""
    path = Path(path).resolve()
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock, ``perf_counter``)."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


class Results:
    """The results of one benchmark run: the text lines (``say``) and the JSON ``record``,
    written together by ``write`` as ``<stem>.txt`` (or ``.md``) and ``<stem>.json``.

    name : the default stem (``--out FILE`` names another). args : the parsed arguments
    (``quick`` and ``out`` are read; all are recorded). script : the script's ``__file__``;
    its folder's ``results/`` is the default folder. header : say the machine line first
    (``# <name>: admmnn ..., CPU, cores, GPU; versions; threads; load``).
    """

    def __init__(self, name: str, args=None, script: str | None = None, text_suffix: str = ".txt",
                 header: bool = True):
        default = Path(script).resolve().parent / "results" if script else RESULTS
        self.folder, self.stem = resolve_out(getattr(args, "out", None), default, name)
        self.name = name
        self.text_suffix = text_suffix
        self.quick = bool(getattr(args, "quick", False))
        self.args = {k: v for k, v in vars(args).items() if k != "out"} if args is not None else {}
        self.lines: list[str] = []
        self.record: dict = {}
        self.start = time.perf_counter()
        self.machine = machine()
        if header:
            self.say(f"# {name}: {machine_line(self.machine)}" + ("; QUICK (smallest settings)" if self.quick else ""))

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.folder / (self.stem + self.text_suffix), self.folder / (self.stem + ".json")

    def say(self, line: str = "") -> str:
        """Print ``line`` (flushed) and keep it for the text file."""
        print(line, flush=True)
        self.lines.append(line)
        return line

    def skip(self, what: str, why: str) -> str:
        """Say that ``what`` was skipped and why (a missing optional package, missing data)."""
        return self.say(f"{what}: skipped, {why}")

    def meta(self) -> dict:
        return {"name": self.name, "machine": self.machine, "args": self.args, "quick": self.quick,
                "argv": sys.argv[1:], "seconds": round(time.perf_counter() - self.start, 3)}

    def write(self, data=None, text: str | None = None) -> tuple[Path, Path]:
        """Write the text (``text``, else the lines said) and the JSON (``data``, else
        ``record``; a dict gets a ``benchmark`` entry with the machine and arguments),
        each atomically. Returns both paths."""
        data = self.record if data is None else data
        if isinstance(data, dict):
            data = {**data, "benchmark": self.meta()}
        text = "\n".join(self.lines) + "\n" if text is None else text
        txt, js = self.paths
        atomic_write(js, to_json(data))
        atomic_write(txt, text if text.endswith("\n") else text + "\n")
        print(f"written {txt} and {js.name}", flush=True)
        return txt, js


def load(path) -> dict | list | None:
    """A JSON results file, or None where there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path) as fh:
        return json.load(fh)


# -- the paper's tables from the results -------------------------------------------------------
#: the inner-tolerance schedules the paper quotes, by the options of their run
INNER_SCHEDULES = {
    "former": {"inner_tol": 1e-2, "inner_tol_power": 1.2},
    "default": {},
    "tight": {"inner_tol": 1e-6, "inner_tol_power": 1.2},
}


def _power_of_ten(x: float) -> str:
    """``10^{-2}`` for 0.01, else ``fmt_number``'s text (math mode, without the dollars)."""
    e = math.log10(x) if x > 0 else float("nan")
    return f"10^{{{round(e)}}}" if abs(e - round(e)) < 1e-9 else report.fmt_number(x).strip("$")


def _schedule_tex(options: dict) -> str:
    """LaTeX of an inner tolerance schedule: ``$10^{-2}\\,k^{-1.2}$``, ``default``, ``fixed $10^{-8}$``."""
    if "tol_fixed" in options:
        return f"fixed ${_power_of_ten(options['tol_fixed'])}$"
    if "inner_tol" not in options:
        extra = ", ".join(f"{report.latex_escape(k)} ${_power_of_ten(v)}$" for k, v in options.items())
        return "default" + (f" ({extra})" if extra else "")
    text = f"${_power_of_ten(options['inner_tol'])}\\,k^{{-{options.get('inner_tol_power', 1.5):g}}}$"
    if "inner_tol_min" in options:
        text += f", floor ${_power_of_ten(options['inner_tol_min'])}$"
    return text


def _inner_tolerance(out: report.Outputs, rec: dict) -> list[str]:
    rows = []
    for r in rec["runs"]:
        first = r.get("first", {})
        rows.append({"schedule": _schedule_tex(r["options"]), "max_iter": r.get("max_iter", rec.get("max_iter")),
                     "status": r["status"], "n_iter": r["n_iter"], "rel_gap": r["rel_gap"],
                     "g2": first.get("0.01"), "g3": first.get("0.001"), "g4": first.get("0.0001"), "inner": r["inner"]})
    out.table("bench_inner_tolerance", rows, [
        ("schedule", "inner tolerance", str), ("max_iter", "max.\\ it."), ("status", "status"), ("n_iter", "iterations"),
        ("rel_gap", "final gap", lambda v: report.fmt_number(v, digits=2)),
        ("g2", "it.\\ to $10^{-2}$"), ("g3", "$10^{-3}$"), ("g4", "$10^{-4}$"),
        ("inner", "CG / $u$-step", "{:.1f}"),
    ], align="lrlrrrrrr")
    out.macro("inner n", rec["n"])
    out.macro("inner patterns", rec["P"])
    out.macro("inner beta", rec["beta"], _power_of_ten(rec["beta"]).replace("{", "{{").replace("}", "}}"))  # math mode
    out.macro("inner solver", rec["solver"])
    for label, options in INNER_SCHEDULES.items():
        run = next((r for r in rec["runs"] if r["options"] == options), None)
        if run is None:
            continue
        out.macro(f"inner {label} status", run["status"])
        out.macro(f"inner {label} iters", run["n_iter"])
        out.macro(f"inner {label} gap", run["rel_gap"], "{:.2f}" if abs(run["rel_gap"]) >= 0.01 else None, digits=2)
        out.macro(f"inner {label} cg", run["inner"], "{:.1f}" if run["inner"] < 10 else "{:.0f}")
    return ["bench_inner_tolerance.tex"]


def _exact_precompute(out: report.Outputs, rec: dict) -> list[str]:
    both = [r for r in rec["rows"] if r["dtype"] == "float64" and r.get("old_s") and r.get("new_s")]
    if both:
        top = max(both, key=lambda r: r["n"])
        out.macro("precompute n", top["n"])
        out.macro("precompute speedup", top["old_s"] / top["new_s"], "{:.0f}")
        out.macro("precompute old seconds", top["old_s"], "{:.0f}")
        out.macro("precompute new seconds", top["new_s"], "{:.1f}")
    rows = [dict(r, speedup=(r["old_s"] / r["new_s"] if r.get("old_s") and r.get("new_s") else None))
            for r in rec["rows"]]
    out.table("bench_exact_precompute", rows, [
        ("dtype", "dtype"), ("n", "$n$"), ("old_s", "eigh (s)", "{:.2f}"), ("new_s", "Cholesky (s)", "{:.2f}"),
        ("speedup", "speed-up", "{:.1f}"), ("rho_s", "new $\\rho$ (s)", "{:.2f}"),
    ], align="lrrrrr")
    return ["bench_exact_precompute.tex"]


#: the shape (n, d, P) of the crossover run that the paper quotes for solver="auto"
CROSSOVER_SHAPE = (1000, 785, 10)


def _crossover(out: report.Outputs, rec: dict) -> list[str]:
    n, d, P = CROSSOVER_SHAPE
    rows = [r for r in rec["rows"] if (r["n"], r["d"], r["P"]) == CROSSOVER_SHAPE]
    exact = next((r for r in rows if r["solver"] == "exact"), None)
    others = [r for r in rows if r["solver"] != "exact"]
    if exact is None or not others:
        print(f"crossover: no exact and matrix-free rows at n={n}, d={d}, P={P}; its macros skipped", flush=True)
        return []
    out.macro("crossover n", n)
    out.macro("crossover d", d)
    out.macro("crossover patterns", P)
    out.macro("crossover cap", rec["cap"], "{:g}")
    out.macro("crossover exact seconds", exact["to_gap_1e-3_s"], "{:.1f}")
    out.macro("crossover matrix free gap", min(r["final_gap"] for r in others), "{:.2f}")
    certified = [r["solver"] for r in others if r["to_gap_1e-3_s"] is not None]
    out.macro("crossover matrix free certified", len(certified))
    return []


def _endgame(out: report.Outputs, recs: list[dict]) -> list[str]:
    """The endgame ablation (benchmarks/endgame.py): iterations and seconds to a certified gap
    for the previous default, ADMM alone and ADMM + endgame, with Clarabel's and scnn's seconds."""
    rows, targets = [], ("0.0001", "1e-06", "1e-08")
    for rec in recs:
        runs = rec.get("runs", [])
        peers = {(r["problem"], r["config"]): r for r in runs if r["config"] in ("clarabel", "scnn")}
        for r in runs:
            if r["config"] in ("clarabel", "scnn"):
                continue
            clar = peers.get((r["problem"], "clarabel"))
            row = {"problem": r["problem"], "config": r["config"], "newton": r.get("newton_steps"),
                   "status": r["status"], "clarabel": clar["seconds"] if clar else None}
            for t in targets:
                it, sec = r.get(f"iter_{t}"), r.get(f"sec_{t}")
                row[t] = "--" if it is None else f"{it} / {sec:.1f}"
            rows.append(row)
    if not rows:
        return []
    out.table("bench_endgame", rows, [
        ("problem", "problem", str), ("config", "method", str),
        ("0.0001", "$10^{-4}$: it.\ / s", str), ("1e-06", "$10^{-6}$", str), ("1e-08", "$10^{-8}$", str),
        ("newton", "Newton"), ("status", "status"), ("clarabel", "Clarabel (s)", "{:.1f}"),
    ], align="llllllrr")
    return ["bench_endgame.tex"]


#: results file -> what turns it into tables and macros ("*" in a name: every matching file, as a list)
PAPER = {"inner_tolerance.json": _inner_tolerance, "exact_precompute.json": _exact_precompute,
         "crossover.json": _crossover, "endgame_*.json": _endgame}


def paper_tables(results=RESULTS, tables="paper/tables") -> list[str]:
    """Write the paper's tables (``tables/bench_<name>.tex``) and macros
    (``tables/benchmarks_macros.tex``: ``\\benchmarksInnerDefaultIters``, ...) from the JSON
    results in ``results``; a missing results file is said and skipped. Returns the
    files written."""
    results = Path(results)
    out = report.Outputs("benchmarks", output_dir=str(tables), source=f"{shown(results)}/*.json (make benchmarks)")
    written = []
    for name, make in PAPER.items():
        if "*" in name:
            rec = [r for r in (load(p) for p in sorted(results.glob(name))) if r]
            rec = rec or None
        else:
            rec = load(results / name)
        if rec is None:
            print(f"{results / name}: missing, its tables skipped", flush=True)
            continue
        written += [str(Path(tables) / f) for f in make(out, rec)]
    if out.macros:
        written.append(str(Path(tables) / "benchmarks_macros.tex"))
    for path in written:
        print(f"written {path}", flush=True)
    return written


def finite(x) -> float | None:
    """``x`` as a float, or None for None, NaN and infinities (JSON-friendly)."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m admmnn.experiments.bench",
                                 description="the paper's tables and macros from the benchmark results")
    ap.add_argument("command", choices=["tables"])
    ap.add_argument("--results", default=str(RESULTS), help="the folder of the JSON results")
    ap.add_argument("--tables", default="paper/tables", help="where the LaTeX files go")
    args = ap.parse_args(argv)
    paper_tables(args.results, args.tables)


if __name__ == "__main__":
    main()
