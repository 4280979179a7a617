"""Fashion-MNIST, all ten classes: ADMM (exact) vs backprop (Adam) vs penalty-method
convex training, on the same objective of the same network.

    python benchmarks/compare_fashion_mnist.py            # n = 10 000 train, 10 000 test

Needs the data (``apt-get install dataset-fashion-mnist`` or a torchvision copy
under data/) and torch. Runs ``admmnn.experiments.compare`` with the settings below, then
writes its table, with ADMM's precompute (the n x n eigendecomposition) and the machine,
to benchmarks/results/compare_fashion_mnist.{txt,json} (``--out``; ``--table FILE`` is
the same as ``--out FILE``). Figures and the full per-epoch results go to
outputs/compare_fashion_mnist/ (``--figures``).
"""
from __future__ import annotations

import os
import platform
import time

from admmnn.experiments import bench, compare


def _threads() -> str:
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ]
    return " ".join(env) if env else "default BLAS/torch threads"


def main(argv=None):
    p = bench.parser(__doc__.splitlines()[0], quick=dict(n_train=500, n_test=500, n_patterns=5, epochs=[2, 2],
                                                       batch_size=100, admm_max_time=10.0))
    p.add_argument("--n_train", type=int, default=10_000)
    p.add_argument("--n_test", type=int, default=10_000)
    p.add_argument("--n_patterns", type=int, default=20)
    p.add_argument("--beta", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, nargs=2, default=[20, 20], metavar=("GD", "CVX"))
    p.add_argument("--batch_size", type=int, default=500)
    p.add_argument("--admm_max_time", type=float, default=900.0, help="seconds, precompute included")
    p.add_argument("--figures", default="outputs/compare_fashion_mnist", help="compare's figures and per-epoch results")
    p.add_argument("--table", default=None, help="the results file (as --out FILE)")
    a = p.parse_args(argv)
    a.out = a.table or a.out
    if bench.missing("torch"):  # the backprop baselines need it
        print(f"compare_fashion_mnist: skipped, {bench.missing('torch')}", flush=True)
        return None
    out = bench.Results("compare_fashion_mnist", a, __file__)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    results = compare.main([
        "--dataset", "fashion-mnist", "--GD", "1", "--CVX", "1", "--ADMM", "1",
        "--n_train", str(a.n_train), "--n_test", str(a.n_test), "--n_patterns", str(a.n_patterns),
        "--beta", str(a.beta), "--n_epochs", *map(str, a.epochs), "--batch_size", str(a.batch_size),
        "--solver_gd", "adam", "--solver_cvx", "adam", "--admm_solver", "exact",
        "--admm_max_time", str(a.admm_max_time), "--admm_max_iter", "100000", "--seed", "0", "--out", a.figures,
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
    for line in lines:
        out.say(line)
    out.record.update(dataset=ds, problem=pr, final={m: compare.final(results, m) for m in compare.METHODS if m in results},
                      admm={k: admm[k] for k in ("status", "n_iter", "width", "objective", "dual_bound", "timings")},
                      wall_s=wall)
    out.write()


if __name__ == "__main__":
    main()
