"""Fashion-MNIST, all ten classes: ADMM (exact) vs backprop (Adam) vs penalty-method
convex training, on the same objective of the same network.

    python benchmarks/compare_fashion_mnist.py            # n = 10 000 train, 10 000 test

Needs the data (``apt-get install dataset-fashion-mnist`` or a torchvision copy
under data/). Runs ``admmnn.experiments.compare`` with the settings below, then writes its
table, with ADMM's precompute (the n x n eigendecomposition) and the machine,
to benchmarks/results/compare_fashion_mnist.txt. Figures and the full
per-epoch results go to outputs/compare_fashion_mnist/.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from admmnn.experiments import compare

HERE = Path(__file__).resolve().parent


def _threads() -> str:
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ]
    return " ".join(env) if env else "default BLAS/torch threads"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n_train", type=int, default=10_000)
    p.add_argument("--n_test", type=int, default=10_000)
    p.add_argument("--n_patterns", type=int, default=20)
    p.add_argument("--beta", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, nargs=2, default=[20, 20], metavar=("GD", "CVX"))
    p.add_argument("--batch_size", type=int, default=500)
    p.add_argument("--admm_max_time", type=float, default=900.0, help="seconds, precompute included")
    p.add_argument("--out", default="outputs/compare_fashion_mnist")
    p.add_argument("--table", default=str(HERE / "results" / "compare_fashion_mnist.txt"))
    a = p.parse_args(argv)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    results = compare.main([
        "--dataset", "fashion-mnist", "--GD", "1", "--CVX", "1", "--ADMM", "1",
        "--n_train", str(a.n_train), "--n_test", str(a.n_test), "--n_patterns", str(a.n_patterns),
        "--beta", str(a.beta), "--n_epochs", *map(str, a.epochs), "--batch_size", str(a.batch_size),
        "--solver_gd", "adam", "--solver_cvx", "adam", "--admm_solver", "exact",
        "--admm_max_time", str(a.admm_max_time), "--admm_max_iter", "100000", "--seed", "0", "--out", a.out,
    ])
    wall = time.perf_counter() - t0
    admm = results["ADMM"]["final"]
    ds, pr = results["dataset"], results["problem"]
    cvx = results["CVX"]
    lines = [
        f"Fashion-MNIST, {len(ds['classes'])} classes: n_train={ds['n_train']}, n_test={ds['n_test']}, "
        f"d={ds['n_features']} + bias, P={pr['P']} Gaussian patterns, beta={pr['beta']:g}, seed 0",
        "objective = 0.5 ||f(X) - Y||^2 + beta/2 (||W1||^2 + ||b1||^2 + ||W2||^2) on the training set, "
        "one-hot targets, same for every method",
        "",
        compare.summary_table(results),
        "",
        f"ADMM (exact): status {admm['status']}, {admm['n_iter']} iterations, {admm['width']} neurons, "
        f"dual bound {admm['dual_bound']:.6g} (gap {admm['objective'] - admm['dual_bound']:.3g}); "
        f"precompute {admm['timings'].get('precompute', float('nan')):.1f} s "
        f"(of which the n x n eigendecomposition and K: {admm['solver_info'].get('precompute_s', float('nan')):.1f} s), "
        f"u-steps {admm['timings'].get('u', float('nan')):.1f} s",
        f"GD: Adam, {results['GD']['info']['width']} hidden neurons (ADMM's count), batch {results['GD']['info']['batch_size']}, "
        f"{len(results['GD']['epoch']) - 1} epochs, lr {results['GD']['info']['lr']:g}",
        f"CVX: Adam, hinge penalty {cvx['info']['penalty']:g}, batch {cvx['info']['batch_size']}, "
        f"{len(cvx['epoch']) - 1} epochs, lr {cvx['info']['lr']:g}; final relative cone violation {cvx['violation'][-1]:.3g}, "
        f"convex-model objective {cvx['convex_objective'][-1]:.6g}",
        "time (s) = training wall time: GD/CVX exclude the per-epoch evaluation; ADMM includes its precompute.",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {_threads()}, load average {load0:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end (other jobs shared the cores); whole run {wall / 60:.1f} min",
    ]
    text = "\n".join(lines) + "\n"
    Path(a.table).parent.mkdir(parents=True, exist_ok=True)
    Path(a.table).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
