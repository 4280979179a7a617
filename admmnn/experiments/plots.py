"""Figures for the notebooks and the paper (matplotlib only; no algorithms here).

Every function takes plain data (a ``SolveResult``, its ``history`` dict, or
dicts of numbers), draws on a new figure (or on ``ax`` when given) and returns the
figure. Axes carry units, values that span decades get log scales, and one run
keeps one colour across panels.

    from admmnn.experiments import plots
    fig = plots.convergence({"numpy": res_np, "jax": res_jax}, x=("iteration", "time"))
    fig = plots.time_breakdown({"exact": res.timings})
    fig = plots.bars({"exact": {"numpy": 0.01, "torch": 0.008}}, ylabel="seconds per iteration")
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..loop import PHASES  # the phases of ``SolveResult.timings``, in the order they are drawn

PHASE_LABELS = {
    "precompute": "precompute (factorisations; JAX: + compilation)",
    "u": "u-step (linear system)",
    "v": "v-step (group soft-threshold)",
    "s": "s-step (cone projection)",
    "dual": "dual updates",
    "accel": "Anderson acceleration",
    "check": "checks (certificate, residuals)",
    "endgame": "endgame (semismooth Newton)",
    "iterations": "fused iterations (u, v, s, dual)",
}
AXIS_LABELS = {
    "iteration": "ADMM iteration",
    "time": "wall time since the start (s)",
}

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.85,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _styled(fn):
    """Draw ``fn``'s figure under ``STYLE`` (fonts are fixed when artists are made).

    The first figure may select the backend inside the context (Jupyter's inline
    backend then turns interactive mode on); that setting is kept on exit, or later
    figures would not be shown in the notebook."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib
        import matplotlib.pyplot as plt

        with plt.rc_context(STYLE):
            result = fn(*args, **kwargs)
            interactive = matplotlib.is_interactive()
        matplotlib.interactive(interactive)
        return result

    return wrapper


def _figure(ax, ncols=1, nrows=1, width=4.2, height=3.2):
    """(figure, axes array) for a new grid, or for the caller's ``ax``."""
    import matplotlib.pyplot as plt

    if ax is not None:
        axes = np.atleast_1d(ax).reshape(nrows, ncols)
        return axes.flat[0].figure, axes
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def _runs(runs) -> dict:
    """``{label: history dict}`` from one result/history or a dict of them."""
    if hasattr(runs, "history") or (isinstance(runs, dict) and "iteration" in runs):
        runs = {"": runs}
    return {label: (r.history if hasattr(r, "history") else r) for label, r in runs.items()}


def positive(values) -> np.ndarray:
    """``values`` as floats with the non-positive ones masked (NaN), for log axes."""
    a = np.asarray(values, dtype=float)
    return np.where(a > 0, a, np.nan)


def spans_decades(values, decades: float = 1.5) -> bool:
    """True when the positive finite ``values`` range over more than ``decades`` powers of 10."""
    a = np.asarray([v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v) and v > 0])
    return a.size > 1 and math.log10(a.max() / a.min()) > decades


def _colors(n):
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


@_styled
def convergence(runs, x=("iteration", "time"), ax=None, title=None):
    """Objective, dual bound and relative gap of one or several solves.

    runs : a ``SolveResult``, its ``history`` dict, or ``{label: either}``.
    x : "iteration", "time" or both (one column each).
    Top row: the objective (solid, an upper bound on the optimum) and the dual bound
    (dashed, a lower bound), log scale. Bottom row: the certified relative gap
    ``(objective - bound) / objective`` (absolute value), log scale when it spans a
    decade. A time axis is logarithmic when the times span two decades.
    """
    xs = (x,) if isinstance(x, str) else tuple(x)
    runs = _runs(runs)
    fig, axes = _figure(ax, ncols=len(xs), nrows=2, width=4.3, height=3.0)
    for (label, h), color in zip(runs.items(), _colors(len(runs))):
        for j, key in enumerate(xs):
            t = np.asarray(h[key], dtype=float)
            top, bottom = axes[0, j], axes[1, j]
            top.plot(t, positive(h["objective"]), color=color)
            top.plot(t, positive(h["dual_bound"]), color=color, ls="--")
            bottom.plot(t, positive(np.abs(h["rel_gap"])), color=color, label=label or None)
    gaps = np.concatenate([np.abs(np.asarray(h["rel_gap"], dtype=float)) for h in runs.values()])
    times = np.concatenate([np.asarray(h["time"], dtype=float)[1:] for h in runs.values()])
    for j, key in enumerate(xs):
        top, bottom = axes[0, j], axes[1, j]
        top.set_yscale("log")
        bottom.set_yscale("log" if spans_decades(gaps, 1) else "linear")
        top.set_ylabel("objective and dual bound")
        bottom.set_ylabel("relative gap")
        bottom.set_xlabel(AXIS_LABELS.get(key, key))
        if key == "time" and spans_decades(times, 2):
            top.set_xscale("log")
            bottom.set_xscale("log")
    from matplotlib.lines import Line2D

    styles = [Line2D([], [], color="0.25", label="objective (upper bound)"),
              Line2D([], [], color="0.25", ls="--", label="dual bound (lower bound)")]
    axes[0, 0].legend(handles=styles, loc="best")
    if len(runs) > 1:
        axes[1, 0].legend(loc="best", ncol=1 if len(runs) < 4 else 2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@_styled
def training_curves(runs: dict, x=("iteration", "time"), optimum=None, optimum_label="certified lower bound",
                    ax=None, title=None):
    """Objective (top) and train/test accuracy (bottom) of several methods.

    runs : ``{label: history}`` with ``objective``, ``train_accuracy`` and optionally
        ``test_accuracy`` lists against ``iteration`` (ADMM; ``epoch`` stands in for
        gradient methods) and ``time`` (s), as ``admmnn.experiments.baselines`` records them.
    x : "iteration", "time" or both (one column each).
    optimum : a reference objective (e.g. the best ADMM dual bound, a lower bound
        for the program over the sampled patterns; a network free to choose its
        patterns may go below it), drawn dotted with ``optimum_label``. Train
        accuracy is solid, test accuracy dashed.
    """
    xs = (x,) if isinstance(x, str) else tuple(x)
    fig, axes = _figure(ax, ncols=len(xs), nrows=2, width=4.4, height=3.0)
    objs = []
    for (label, h), color in zip(runs.items(), _colors(len(runs))):
        for j, key in enumerate(xs):
            t = np.asarray(h[key] if key in h else h["epoch"], dtype=float)  # epochs on the iteration axis
            axes[0, j].plot(t, positive(h["objective"]), color=color, label=label)
            axes[1, j].plot(t, 100 * np.asarray(h["train_accuracy"], dtype=float), color=color)
            if "test_accuracy" in h:
                axes[1, j].plot(t, 100 * np.asarray(h["test_accuracy"], dtype=float), color=color, ls="--")
        objs.append(np.asarray(h["objective"], dtype=float))
    times = np.concatenate([np.asarray(h["time"], dtype=float) for h in runs.values()])
    for j, key in enumerate(xs):
        top, bottom = axes[0, j], axes[1, j]
        if optimum is not None:
            top.axhline(optimum, color="0.2", ls=":", lw=1.2, label=optimum_label if j == len(xs) - 1 else None)
        top.set_yscale("log" if spans_decades(np.concatenate(objs), 1) else "linear")
        top.set_ylabel("training objective")
        bottom.set_ylabel("accuracy (%)")
        bottom.set_xlabel("ADMM iteration / epoch" if key == "iteration" else AXIS_LABELS.get(key, key))
        if key == "time" and spans_decades(times[times > 0], 2):
            top.set_xscale("log")
            bottom.set_xscale("log")
    from matplotlib.lines import Line2D

    handles, labels = axes[0, -1].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.25", label="train accuracy"),
                Line2D([], [], color="0.25", ls="--", label="test accuracy")]
    if title:
        fig.suptitle(title)
    # below the panels, where it hides no curve, inside the figure so that any savefig keeps it
    ncol = min(4, len(handles))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, 0.02 + 0.045 * rows, 1, 1))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)
    return fig


@_styled
def curves(x, series: dict, xlabel: str, ylabel: str, xscale=None, yscale=None, mark=None, mark_label=None,
           ax=None, title=None, markers=True):
    """Lines ``{label: y}`` against a shared ``x``; ``xscale``/``yscale`` default to
    "log" when the values span decades. ``mark`` draws a vertical line (a chosen value)."""
    fig, axes = _figure(ax)
    a = axes[0, 0]
    for label, y in series.items():
        a.plot(x, y, marker="o" if markers else None, ms=4, label=label)
    a.set_xscale(xscale or ("log" if spans_decades(x) else "linear"))
    values = np.concatenate([np.ravel(np.asarray(y, dtype=float)) for y in series.values()])
    a.set_yscale(yscale or ("log" if spans_decades(values, 2) and np.nanmin(values) > 0 else "linear"))
    if mark is not None:
        a.axvline(mark, color="0.3", ls=":", lw=1.2, label=mark_label)
    a.set_xlabel(xlabel)
    a.set_ylabel(ylabel)
    if len(series) > 1 or mark_label:
        a.legend(loc="best")
    if title:
        a.set_title(title)
    fig.tight_layout()
    return fig


@_styled
def gap_curves(panels: dict, floor: float = 1e-14, ylabel: str = "certified relative gap"):
    """One panel per problem: ``{title: {label: (iterations, rel_gaps)}}``, the
    absolute relative gap on a log scale (values below ``floor`` drawn at it), one
    shared legend below the panels."""
    fig, axes = _figure(None, ncols=len(panels), width=4.4, height=3.4)
    labels = list(dict.fromkeys(label for runs in panels.values() for label in runs))
    colors = dict(zip(labels, _colors(len(labels))))
    for a, (title, runs) in zip(axes[0], panels.items()):
        for label, (it, gap) in runs.items():
            g = np.maximum(np.abs(np.asarray(gap, dtype=float)), floor)
            a.plot(np.asarray(it, dtype=float), g, color=colors[label], label=label,
                   lw=2.2 if label == "default" else 1.3)
        a.set_yscale("log")
        a.set_xlabel("ADMM iteration")
        a.set_title(title)
    axes[0, 0].set_ylabel(ylabel)
    handles = [axes[0, 0].plot([], [], color=colors[lb], label=lb)[0] for lb in labels]
    ncol = min(4, len(handles))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, 0.03 + 0.06 * rows, 1, 1))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)
    return fig


def accuracy(x, series: dict, xlabel: str, ax=None, **kwargs):
    """Accuracy curves ``{label: fractions in [0, 1]}`` drawn in percent."""
    pct = {label: 100 * np.asarray(y, dtype=float) for label, y in series.items()}
    return curves(x, pct, xlabel, "accuracy (%)", yscale="linear", ax=ax, **kwargs)


@_styled
def time_breakdown(timings: dict, ax=None, phases=PHASES, title=None):
    """Horizontal stacked bars: seconds per phase for each run.

    timings : ``{label: SolveResult.timings}`` (or a single timings dict).
    """
    if timings and all(isinstance(v, (int, float)) for v in timings.values()):
        timings = {"": timings}
    labels = list(timings)
    present = [p for p in phases if any(t.get(p, 0) > 0 for t in timings.values())]
    fig, axes = _figure(ax, width=7.5, height=max(0.5 * len(labels) + 1.2, 0.3 * len(present) + 0.9))
    a = axes[0, 0]
    left = np.zeros(len(labels))
    for phase, color in zip(present, _colors(len(present))):
        w = np.array([timings[lb].get(phase, 0.0) for lb in labels])
        a.barh(labels, w, left=left, color=color, label=PHASE_LABELS.get(phase, phase), height=0.6)
        left += w
    for i, total in enumerate(left):
        a.text(total, i, f" {total:.3g} s", va="center", fontsize=8.5)
    a.set_xlim(0, left.max() * 1.25 if left.size and left.max() > 0 else 1)
    a.set_xlabel("wall time (s)")
    a.invert_yaxis()
    a.grid(axis="y", visible=False)
    a.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    if title:
        a.set_title(title)
    fig.tight_layout()
    return fig


@_styled
def condition_numbers(ranks, kappas: dict, ax=None, xlabel="Nyström sketch rank r", title=None):
    """Condition number against rank, one line per matrix ``{label: kappas}``;
    a scalar value is drawn as a horizontal reference line (e.g. kappa(A))."""
    fig, axes = _figure(ax)
    a = axes[0, 0]
    for (label, k), color in zip(kappas.items(), _colors(len(kappas))):
        if np.ndim(k) == 0:
            a.axhline(float(k), color=color, ls="--", label=label)
        else:
            a.plot(ranks, positive(k), marker="o", ms=4, color=color, label=label)
    a.set_yscale("log")
    a.set_xlabel(xlabel)
    a.set_ylabel("condition number κ")
    a.legend(loc="best")
    if title:
        a.set_title(title)
    fig.tight_layout()
    return fig


@_styled
def bars(values: dict, ylabel: str, ax=None, log=None, title=None, fmt="{:.3g}", xlabel=None, width=None, height=3.3):
    """Grouped bars: ``{group: {label: value}}`` (e.g. solver -> backend -> seconds per
    iteration). Missing or NaN values leave a gap; log scale when values span decades.
    ``width``, ``height``: inches (default width: 0.55 per bar); value labels turn
    vertical where a bar is narrower than they are."""
    groups = list(values)
    labels = list(dict.fromkeys(lb for g in groups for lb in values[g]))
    fixed_width = width is not None
    width = max(4.6, 2.2 + 0.55 * len(groups) * len(labels)) if width is None else width
    fig, axes = _figure(ax, width=width, height=height)
    vertical = (width - 2.2) / max(len(groups) * len(labels), 1) < 0.4
    a = axes[0, 0]
    width = 0.8 / max(len(labels), 1)
    allv = [values[g].get(lb, np.nan) for g in groups for lb in labels]
    use_log = spans_decades(allv) if log is None else log
    for i, (label, color) in enumerate(zip(labels, _colors(len(labels)))):
        xs = np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width
        ys = np.array([values[g].get(label, np.nan) for g in groups], dtype=float)
        a.bar(xs, np.nan_to_num(ys), width=width * 0.92, color=color, label=label)
        for xx, yy in zip(xs, ys):
            if np.isfinite(yy):
                a.text(xx, yy, fmt.format(yy), ha="center", va="bottom", fontsize=7.5, rotation=90 if vertical else 0)
    a.set_xticks(np.arange(len(groups)))
    crowded = fixed_width and max((len(str(g)) for g in groups), default=0) * 0.07 > (width - 2.2) / max(len(groups), 1)
    a.set_xticklabels(groups, rotation=25 if crowded else 0, ha="right" if crowded else "center")
    if use_log:
        a.set_yscale("log")
    finite = [v for v in allv if np.isfinite(v) and v > 0]
    if finite:
        top = max(finite)
        a.set_ylim(top=top * (3.0 if use_log else 1.15))
    a.set_ylabel(ylabel)
    if xlabel:
        a.set_xlabel(xlabel)
    a.grid(axis="x", visible=False)
    if len(labels) > 1:
        a.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        a.set_title(title)
    fig.tight_layout()
    return fig


def seconds_per_iteration(rows, ax=None, key="seconds_per_iteration", group="solver", label="backend", **kwargs):
    """``bars`` from benchmark rows (dicts): one group per solver, one bar per backend."""
    values: dict = {}
    for r in rows:
        values.setdefault(r[group], {})[r[label]] = r[key]
    return bars(values, "seconds per ADMM iteration", ax=ax, **kwargs)


@_styled
def comparison(results: dict, x: str, methods, labels: dict):
    """Train/test accuracy (or loss) and objective of the comparison command line's
    ``results`` (``admmnn.experiments.compare``) against ``x``: "epoch" (ADMM's final
    value as a dashed line) or "time" (s); three panels side by side."""
    classification = results["problem"]["classification"]
    panels = (
        [("train_accuracy", "train accuracy (%)"), ("test_accuracy", "test accuracy (%)")]
        if classification
        else [("train_loss", "train loss (mean 0.5 squared error)"), ("test_loss", "test loss (mean 0.5 squared error)")]
    ) + [("objective", "objective (0.5 SSE + weight decay)")]
    colors = {"GD": "tab:blue", "CVX": "tab:orange", "ADMM": "tab:green"}
    xlabel = "epoch" if x == "epoch" else "training wall time (s)"
    fig, axes = _figure(None, ncols=3, width=5.0, height=4.2)
    for ax, (key, ylabel) in zip(axes[0], panels):
        scale = 100.0 if "accuracy" in key else 1.0
        values = []
        for m in methods:
            if m not in results:
                continue
            r = results[m]
            y = np.array([np.nan if v is None else v for v in r[key]], dtype=float) * scale
            if m == "ADMM" and x == "epoch":
                ax.axhline(r["final"][key] * scale, color=colors[m], ls="--", label=f"{labels[m]} (final, {r['final']['n_iter']} it.)")
                values.append(r["final"][key] * scale)
                continue
            t = np.asarray(r[x], dtype=float)
            ax.plot(t, y, color=colors[m], marker="." if len(t) < 60 else None, label=labels[m])
            values.extend(y[np.isfinite(y)].tolist())
        if key == "objective" and spans_decades(values, 1):
            ax.set_yscale("log")
        if x == "time":
            times = [t for m in methods if m in results for t in results[m]["time"] if t and t > 0]
            if spans_decades(times, 2):
                ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    ds = results["dataset"]
    fig.suptitle(
        f"{ds['name']}: n_train={ds['n_train']}, n_test={ds['n_test']}, d={ds['n_features']}, "
        f"P={results['problem']['P']}, beta={results['problem']['beta']:g}"
    )
    fig.tight_layout()
    return fig


@_styled
def convergence_grid(panels: dict, x: str = "time", ncols: int = 4, width: float = 1.7, height: float = 1.8):
    """One small panel per solver (or problem): ``{title: {label: history or result}}``,
    the objective (solid, an upper bound) and the dual bound (dashed, a lower bound)
    against ``x`` ("time" or "iteration"), one colour per label, log scale, a few
    major ticks per axis; one legend below. ``width``, ``height``: inches per panel,
    so that the figure is drawn at the size it is printed."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(None, ncols=ncols, nrows=nrows, width=width, height=height)
    labels = list(dict.fromkeys(label for runs in panels.values() for label in runs))
    colors = dict(zip(labels, _colors(len(labels))))
    for i, (a, (title, runs)) in enumerate(zip(axes.flat, panels.items())):
        for label, h in _runs(runs).items():
            t = np.asarray(h[x], dtype=float)
            a.plot(t, positive(h["objective"]), color=colors[label])
            a.plot(t, positive(h["dual_bound"]), color=colors[label], ls="--")
        a.set_yscale("log")
        a.yaxis.set_major_locator(LogLocator(numticks=4))
        a.yaxis.set_minor_formatter(NullFormatter())
        a.xaxis.set_major_locator(MaxNLocator(3))
        a.set_title(title)
        if i + ncols >= len(panels):
            a.set_xlabel("wall time (s)" if x == "time" else AXIS_LABELS.get(x, x))
    for a in axes.flat[len(panels):]:
        a.set_axis_off()
    fig.supylabel("objective and dual bound", fontsize=STYLE["axes.labelsize"])
    handles = [Line2D([], [], color=colors[lb], label=lb) for lb in labels]
    handles += [Line2D([], [], color="0.25", label="objective"), Line2D([], [], color="0.25", ls="--", label="dual bound")]
    ncol = min(5, len(handles))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, (0.1 + 0.2 * rows) / (nrows * height), 1, 1))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)
    return fig


__all__ = [
    "PHASES", "STYLE", "convergence", "training_curves", "curves", "accuracy", "time_breakdown",
    "condition_numbers", "bars", "seconds_per_iteration", "comparison", "convergence_grid", "positive", "spans_decades",
]
