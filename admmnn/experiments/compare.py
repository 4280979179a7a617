"""Convex vs non-convex training from the command line, with the flags of an earlier CIFAR-10
project that compared SGD training with the convex program solved by Adam.

    python -m admmnn.experiments.compare --GD 1 --CVX 1 --n_epochs 50 20 --solver_cvx adam --seed 0
    python -m admmnn.experiments.compare --dataset digits --GD 1 --CVX 1 --ADMM 1 --n_epochs 30 30

Methods, all on the same data, targets, patterns and beta, and all scored on the
same function of the network (``0.5 ||f(X) - Y||^2 + beta/2 ||weights||^2``,
see ``admmnn.experiments.baselines``):

* GD   : the non-convex two-layer ReLU network trained by backprop (Adam/SGD);
* CVX  : the convex program with hinge-penalised constraints trained by Adam/SGD;
* ADMM : the convex program solved by ``admmnn.solve``.

Writes ``results.pt`` (``torch.save`` of plain dicts and lists, as that project wrote),
``results.json`` (the same), ``compare_epoch.png`` and ``compare_time.png`` into
``--out``, and prints a summary table.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import targets
from ..io import json_value
from ..patterns import PATTERN_KINDS, sample_patterns
from . import plots
from .baselines import evaluate, train_admm, train_convex_penalty, train_mlp
from .data import DATASETS, DatasetUnavailableError, load_dataset


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _flag(text):
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"expected 0 or 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    pos_int, pos_float = _positive(int), _positive(float)
    p = argparse.ArgumentParser(
        prog="python -m admmnn.experiments.compare",
        description="Compare backprop (GD), penalty-method convex training (CVX) and ADMM on one problem.",
    )
    p.add_argument("--GD", type=_flag, default=1, help="1: train the non-convex network by backprop")
    p.add_argument("--CVX", type=_flag, default=1, help="1: train the convex program with penalised constraints")
    p.add_argument("--ADMM", type=_flag, default=0, help="1: solve the convex program by ADMM (admmnn.solve)")
    p.add_argument("--n_epochs", type=pos_int, nargs=2, default=[50, 20], metavar=("GD", "CVX"), help="epochs for GD and CVX")
    p.add_argument("--solver_cvx", choices=("adam", "sgd"), default="adam", help="optimizer of CVX")
    p.add_argument("--solver_gd", choices=("adam", "sgd"), default="adam", help="optimizer of GD")
    p.add_argument("--lr_gd", type=pos_float, default=None, help="learning rate of GD (on objective / n)")
    p.add_argument("--lr_cvx", type=pos_float, default=None, help="learning rate of CVX (on objective / n)")
    p.add_argument("--batch_size", type=pos_int, default=1000, help="minibatch size of GD and CVX (>= n: full batch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", choices=DATASETS, default="cifar10")
    p.add_argument("--root", default="data", help="data directory (downloads go here)")
    p.add_argument("--n_train", type=pos_int, default=None, help="training samples (default: the whole split)")
    p.add_argument("--n_test", type=pos_int, default=None, help="test samples (default: the whole split)")
    p.add_argument("--classes", nargs="+", default=None, help="class ids or names to keep, e.g. airplane automobile")
    p.add_argument("--downsample", type=pos_int, default=1, help="spatial stride on the image grid")
    p.add_argument("--beta", type=pos_float, default=1e-3, help="regularisation (the same for every method)")
    p.add_argument("--n_patterns", type=pos_int, default=50, help="number P of sampled activation patterns")
    p.add_argument("--patterns", choices=PATTERN_KINDS, default="gaussian", help="pattern sampler")
    p.add_argument("--kernel", type=pos_int, default=3, help="filter size of the conv patterns")
    p.add_argument("--penalty", type=pos_float, default=1.0, help="CVX hinge penalty weight on the cone constraints")
    p.add_argument("--width", type=pos_int, default=None, help="GD hidden width (default: ADMM's active neurons, else 2 P C)")
    p.add_argument("--admm_solver", default="auto", help="u-step solver of ADMM")
    p.add_argument("--admm_max_iter", type=pos_int, default=1000)
    p.add_argument("--admm_max_time", type=pos_float, default=None, help="ADMM wall-clock limit (s)")
    p.add_argument("--admm_tol", type=pos_float, default=1e-4)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="precision of GD and CVX training")
    p.add_argument("--out", default="outputs/compare", help="output directory")
    p.add_argument("--no_plots", action="store_true", help="skip the figures")
    return p


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.GD or args.CVX or args.ADMM):
        parser.error("nothing to run: set at least one of --GD 1, --CVX 1, --ADMM 1")
    try:
        ds = load_dataset(
            args.dataset,
            classes=args.classes,
            n_train=args.n_train,
            n_test=args.n_test,
            downsample=args.downsample,
            root=args.root,
            seed=args.seed,
        )
    except DatasetUnavailableError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if args.patterns == "conv" and ds.image_shape is None:
        parser.error(f"--patterns conv needs image data; {args.dataset} has none")
    results = run(args, ds)
    print(summary_table(results))
    return results


def run(args, ds) -> dict:
    """Run the requested methods on data set ``ds``; save and plot; return the results."""

    classification = ds.n_classes >= 2
    labels = np.arange(ds.n_classes)
    T = targets.encode(ds.y_train, labels)[0] if classification else np.asarray(ds.y_train, float).reshape(len(ds.y_train), -1)
    Tt = targets.encode(ds.y_test, labels)[0] if classification else np.asarray(ds.y_test, float).reshape(len(ds.y_test), -1)
    ones = lambda A: np.hstack([A, np.ones((A.shape[0], 1))])  # noqa: E731
    Xb, Xbt = ones(ds.X_train), ones(ds.X_test)
    D, _ = sample_patterns(args.patterns, Xb, args.n_patterns, seed=args.seed, image_shape=ds.image_shape, kernel=args.kernel)
    P, C = D.shape[1], T.shape[1]
    results = {
        "args": vars(args).copy(),
        "dataset": {
            "name": ds.name,
            "n_train": int(ds.X_train.shape[0]),
            "n_test": int(ds.X_test.shape[0]),
            "n_features": ds.n_features,
            "classes": list(ds.class_names),
            "image_shape": list(ds.image_shape) if ds.image_shape else None,
            "source": ds.source,
        },
        "problem": {"P": P, "C": C, "beta": args.beta, "classification": classification},
    }
    common = dict(seed=args.seed, dtype=args.dtype, classification=classification)

    if args.ADMM:
        t0 = time.perf_counter()
        admm = train_admm(
            Xb, T, D, args.beta, solver=args.admm_solver, max_iter=args.admm_max_iter, max_time=args.admm_max_time,
            tol=args.admm_tol, X_test=Xbt, Y_test=Tt, classification=classification,
        )
        res, log = admm.info["result"], {k: v for k, v in admm.history.items() if not k.startswith("seconds_")}
        wall = log["time"][-1] if log.get("time") else time.perf_counter() - t0
        tr = evaluate(res.network, Xb, T, args.beta, classification)
        te = evaluate(res.network, Xbt, Tt, classification=classification)
        results["ADMM"] = {
            **log,
            "final": {
                "objective": tr["objective"], "dual_bound": res.dual_bound, "status": res.status, "n_iter": res.n_iter,
                "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "test_loss": te["loss"],
                "test_accuracy": te["accuracy"], "time": wall, "width": res.network.width, "solver": res.solver,
                "timings": dict(res.timings), "solver_info": {k: v for k, v in res.info.items() if np.isscalar(v)},
            },
        }

    if args.CVX:
        cvx = train_convex_penalty(
            Xb, T, D, args.beta, epochs=args.n_epochs[1], optimizer=args.solver_cvx, lr=args.lr_cvx,
            batch_size=args.batch_size, penalty=args.penalty, X_test=Xbt, Y_test=Tt, **common,
        )
        results["CVX"] = {**cvx.history, "info": cvx.info}

    if args.GD:
        width = args.width or (results["ADMM"]["final"]["width"] if args.ADMM else 0) or 2 * P * C
        gd = train_mlp(
            ds.X_train, T, width=width, beta=args.beta, epochs=args.n_epochs[0], optimizer=args.solver_gd,
            lr=args.lr_gd, batch_size=args.batch_size, X_test=ds.X_test, Y_test=Tt, **common,
        )
        results["GD"] = {**gd.history, "info": gd.info}

    save(results, Path(args.out), plots=not args.no_plots)
    return results


# -- output -------------------------------------------------------------------------
METHODS = ("GD", "CVX", "ADMM")
LABELS = {"GD": "backprop MLP (GD)", "CVX": "convex, penalty method (CVX)", "ADMM": "convex, ADMM"}


def save(results: dict, out: Path, plots: bool = True) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    plain = json_value(results, "results", strict=False)
    torch.save(plain, out / "results.pt")
    with open(out / "results.json", "w") as fh:
        json.dump(plain, fh, indent=1)
    if plots:
        plot(plain, out)


def final(results: dict, method: str) -> dict:
    """Final objective, accuracies, loss and training seconds of one method."""
    r = results[method]
    if method == "ADMM":
        return r["final"]
    keys = ("objective", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "time")
    return {k: r[k][-1] for k in keys}


def summary_table(results: dict) -> str:
    rows = [f"{'method':32s} {'objective':>12s} {'train acc':>9s} {'test acc':>9s} {'test loss':>9s} {'time (s)':>9s}"]

    def pct(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:8.2f}%"

    for m in METHODS:
        if m in results:
            f = final(results, m)
            rows.append(
                f"{LABELS[m]:32s} {f['objective']:12.6g} {pct(f['train_accuracy']):>9s} {pct(f['test_accuracy']):>9s} "
                f"{f['test_loss']:9.4g} {f['time']:9.2f}"
            )
    return "\n".join(rows)


def plot(results: dict, out: Path) -> None:
    """compare_epoch.png and compare_time.png (``plots.comparison``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for xkey, fname in (("epoch", "compare_epoch.png"), ("time", "compare_time.png")):
        fig = plots.comparison(results, xkey, METHODS, LABELS)
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
