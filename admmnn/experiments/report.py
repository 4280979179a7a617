"""Glue between the notebooks and the paper: generated LaTeX tables and macros,
figure files, the machine description, and the notebooks' data hook.

Every number in ``paper/paper.tex`` comes from a file written here: a notebook
collects its numbers with ``Outputs.macro`` (``\\newcommand{\\tutorialTestAcc}{95.0}``
in ``paper/tables/tutorial_macros.tex``), its tables with ``Outputs.table``
(``\\begin{tabular}...`` in ``paper/tables/<stem>.tex``) and its figures with
``Outputs.figure`` (PNG under ``output_dir``, PDF under ``paper/figures``)::

    out = Outputs("tutorial", output_dir="outputs/tutorial", paper_dir="paper")
    out.describe(dataset="digits")                 # \\tutorialDataset, \\tutorialMachine, ...
    out.macro("testAcc", 100 * acc, "{:.1f}")      # \\tutorialTestAcc
    out.table("tutorial_path", rows, [("beta", r"$\\beta$"), ("val", "validation acc.")])
    out.figure(fig, "tutorial_convergence")

No algorithm lives here.
"""
from __future__ import annotations

import math
import os
import platform
import re

import numpy as np

from .data import load_dataset, standardize

_NUMBERS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
            "Eleven", "Twelve", "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen")
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


# --- formatting -------------------------------------------------------------
def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def macro_name(*parts: str) -> str:
    """A valid LaTeX command name (letters only) in camel case from ``parts``:
    ``macro_name("jax_vs_cpu", "time to gap")`` -> ``"jaxVsCpuTimeToGap"``; numbers
    are spelled out (``"cifar10"`` -> ``"cifarTen"``, ``"p128"`` -> ``"pOneTwoEight"``)."""
    words = [w for p in parts for w in re.split(r"[^A-Za-z0-9]+", str(p)) if w]
    out = []
    for i, w in enumerate(words):
        w = re.sub(r"\d+", lambda m: _spell(m.group()), w)
        out.append(w[0].lower() + w[1:] if i == 0 else w[0].upper() + w[1:])
    name = "".join(out)
    if not name or not name.isalpha():
        raise ValueError(f"cannot make a LaTeX macro name from {parts!r}")
    return name


def _spell(digits: str) -> str:
    if int(digits) < len(_NUMBERS) and not (len(digits) > 1 and digits[0] == "0"):
        return _NUMBERS[int(digits)]
    return "".join(_NUMBERS[int(c)] for c in digits)


def fmt_number(value, fmt: str | None = None, digits: int = 3) -> str:
    """LaTeX text for ``value``: ``fmt.format(value)`` when given; else integers as
    they are, floats to ``digits`` significant digits (``$1.2\\times10^{-5}$``
    outside [1e-3, 1e5)), strings escaped, None/NaN as ``--``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        return latex_escape(value)
    if fmt is not None:
        return fmt.format(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if math.isinf(v):
        return r"$\infty$" if v > 0 else r"$-\infty$"
    if v == 0 or 1e-3 <= abs(v) < 1e5:
        text = f"{v:.{digits}g}"
        if "e" not in text:
            return text
    mant, exp = f"{v:.{max(digits - 1, 0)}e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    power = f"10^{{{int(exp)}}}"
    if mant in ("1", "-1"):
        return f"${mant[:-1]}{power}$"
    return f"${mant}\\times{power}$"


def tabular(rows, columns, align: str | None = None) -> str:
    """A booktabs ``tabular`` from ``rows`` (dicts) and ``columns``: a list of
    ``(key, header)`` or ``(key, header, fmt)`` where fmt is a format string or a
    callable returning LaTeX. Headers are LaTeX as given; cells are formatted by
    ``fmt_number``. Text columns align left, numbers right."""
    cols = [(c[0], c[1], c[2] if len(c) > 2 else None) for c in columns]

    def cell(row, key, fmt):
        v = row.get(key) if isinstance(row, dict) else row[key]
        return fmt(v) if callable(fmt) else fmt_number(v, fmt)

    if align is None:
        align = "".join(
            "l" if rows and all(isinstance(r.get(k) if isinstance(r, dict) else r[k], str) for r in rows) else "r"
            for k, _, _ in cols
        )
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(h for _, h, _ in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(r, k, f) for k, _, f in cols) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# --- the machine --------------------------------------------------------------
def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else ``platform``)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the CUDA GPUs torch or JAX can see (empty without one)."""
    names: list[str] = []
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    if not names:
        try:
            import jax

            names = [str(getattr(d, "device_kind", d)) for d in jax.devices("gpu")]
        except Exception:  # no JAX, or a JAX without GPU support
            pass
    return names


def machine() -> dict:
    """What produced the numbers: CPU, cores, memory, GPU and library versions."""
    info = {"cpu": cpu_name(), "cores": os.cpu_count() or 1, "python": platform.python_version()}
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    gpus = gpu_names()
    info["gpu"] = ", ".join(gpus) if gpus else "none"
    for lib in ("numpy", "torch", "jax"):
        try:
            info[lib] = __import__(lib).__version__
        except ImportError:
            info[lib] = "absent"
    return info


def machine_text(info: dict | None = None) -> str:
    """One line for a caption: ``AMD EPYC, 2 cores, 24 GiB, no GPU``."""
    info = info or machine()
    parts = [info["cpu"], f"{info['cores']} cores"]
    if "memory_gib" in info:
        parts.append(f"{info['memory_gib']} GiB")
    parts.append("no GPU" if info["gpu"] == "none" else f"GPU {info['gpu']}")
    return ", ".join(parts)


# --- outputs of one notebook ------------------------------------------------------
class Outputs:
    """Where one notebook's figures, tables and macros go.

    name : the notebook's name; macros are prefixed with its camel case
        (``tutorial`` -> ``\\tutorialTestAcc``) and written to
        ``<paper_dir>/tables/<name>_macros.tex``.
    output_dir : PNG figures and copies of every table for people reading the
        executed notebook. paper_dir : when given, PDF figures go to
        ``<paper_dir>/figures`` and LaTeX to ``<paper_dir>/tables``.
    source : what the files say generated them (default ``notebooks/<name>.ipynb``).
    """

    def __init__(self, name: str, output_dir: str = "outputs", paper_dir: str | None = None, source: str | None = None):
        self.name = name
        self.source = source or f"notebooks/{name}.ipynb"
        self.prefix = macro_name(name)
        self.output_dir = output_dir
        self.paper_dir = paper_dir or None
        self.macros: dict[str, str] = {}
        os.makedirs(output_dir, exist_ok=True)
        if self.paper_dir:
            os.makedirs(os.path.join(self.paper_dir, "figures"), exist_ok=True)
            os.makedirs(os.path.join(self.paper_dir, "tables"), exist_ok=True)

    def _targets(self, kind: str, filename: str) -> list[str]:
        paths = [os.path.join(self.output_dir, filename)]
        if self.paper_dir:
            paths.append(os.path.join(self.paper_dir, kind, filename))
        return paths

    def figure(self, fig, stem: str) -> list[str]:
        """Save ``fig`` as ``<output_dir>/<stem>.png`` and ``<paper_dir>/figures/<stem>.pdf``."""
        paths = [os.path.join(self.output_dir, stem + ".png")]
        fig.savefig(paths[0])
        if self.paper_dir:
            paths.append(os.path.join(self.paper_dir, "figures", stem + ".pdf"))
            fig.savefig(paths[1])
        return paths

    def table(self, stem: str, rows, columns, align: str | None = None) -> str:
        """Write the ``tabular`` of ``rows`` to ``<stem>.tex`` (output and paper dirs); return it."""
        text = tabular(rows, columns, align)
        for path in self._targets("tables", stem + ".tex"):
            with open(path, "w") as fh:
                fh.write(f"% generated by {self.source} (admmnn.experiments.report); do not edit\n" + text)
        return text

    def macro(self, key: str, value, fmt: str | None = None, digits: int = 3) -> str:
        """Record ``\\<prefix><Key>`` = ``fmt_number(value)`` and rewrite the macros file;
        returns the LaTeX text of the value."""
        text = fmt_number(value, fmt, digits)
        self.macros[macro_name(self.prefix, key)] = text
        self.write_macros()
        return text

    def describe(self, dataset: str, **extra) -> dict:
        """Macros that say what produced the numbers: ``<prefix>Dataset``,
        ``<prefix>Machine`` (CPU, cores, memory, GPU), ``<prefix>Cpu``, ``<prefix>Gpu``,
        library versions, and any ``extra`` values."""
        info = machine()
        self.macro("dataset", dataset)
        self.macro("machine", machine_text(info))
        self.macro("cpu", info["cpu"])
        self.macro("cores", info["cores"])
        self.macro("gpu", info["gpu"])
        for lib in ("numpy", "torch", "jax"):
            self.macro(f"{lib} version", info[lib])
        for key, value in extra.items():
            self.macro(key, value)
        return info

    def write_macros(self) -> list[str]:
        body = "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in sorted(self.macros.items()))
        paths = self._targets("tables", f"{self.name}_macros.tex")
        for path in paths:
            with open(path, "w") as fh:
                fh.write(f"% generated by {self.source} (admmnn.experiments.report); do not edit\n" + body)
        return paths


# --- the notebooks' data hook ------------------------------------------------------
def load_data(dataset: str = "digits", n_train=None, n_val: int = 0, n_test=None, classes=None, seed: int = 0,
              downsample: int = 1):
    """``(X_train, y_train, X_val, y_val, X_test, y_test)`` for the notebooks, flattened
    and standardised once, with the statistics of the training rows alone; ``n_val``
    of the training rows become the validation split, ``n_train`` rows stay for
    training (all by default).

    Reads ``load_dataset(dataset, classes=, n_train=, n_test=, seed=, downsample=)``
    of ``admmnn.experiments.data`` (cifar10, fashion-mnist, mnist, digits, synthetic).
    A feature constant over the training rows becomes 0.
    """
    ds = load_dataset(dataset, classes=classes, n_train=None if n_train is None else n_train + n_val,
                      n_test=n_test, seed=seed, downsample=downsample, standardize=False)
    Xtr, ytr, Xte, yte = (np.asarray(a) for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ytr))
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        train = train[:n_train]
    if n_test is not None:
        Xte, yte = Xte[:n_test], yte[:n_test]
    flat = lambda A: np.asarray(A, dtype=np.float64).reshape(A.shape[0], int(np.prod(A.shape[1:])))  # noqa: E731
    Xv, yv, Xtr, ytr, Xte = flat(Xtr[val]), ytr[val], flat(Xtr[train]), ytr[train], flat(Xte)
    Xtr, Xv, Xte = standardize(Xtr, Xv, Xte)
    return Xtr, ytr, Xv, yv, Xte, yte


__all__ = [
    "Outputs", "tabular", "fmt_number", "macro_name", "latex_escape",
    "machine", "machine_text", "cpu_name", "gpu_names", "load_data",
]
