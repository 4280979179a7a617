"""Two processes on this machine, two simulated CPU devices each, one row-sharded solve.

    python benchmarks/distributed_localhost.py             # launch both, compare with one process
    python benchmarks/distributed_localhost.py --n 122 --solver pcg-nystrom-block

The launcher writes a synthetic problem to .npy files, starts two worker processes
that meet over localhost (``admmnn.distributed.initialize``, gloo collectives) and
each memory-maps only its own rows (``row_block``), computes its rows of D from
gates drawn from a shared seed, and solves on the 4-device mesh. It then solves
the same problem in one process on one device and prints both results and their
differences (JSON on the last line; exit status 1 if they disagree beyond
``--rtol``). It is also a test (``tests/core/test_sharding.py``), so it writes its
results (distributed_localhost.{txt,json}) only where ``--out`` is given
(``make benchmarks`` gives benchmarks/results).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

from admmnn.experiments import bench


def solve_options(args) -> dict:
    # inner CG solved to rounding, fixed iteration count: the runs differ only by rounding
    return dict(solver=args.solver, max_iter=args.iters, tol=1e-14, inner_tol=1e-13, inner_tol_power=0.01,
                check_every=args.iters)


def gates(d, P, seed):
    """Gate vectors drawn from the seed alone: the same on every process."""
    return np.random.default_rng(seed).standard_normal((d, P))


def worker(args):
    from admmnn import distributed

    distributed.initialize(f"localhost:{args.port}", num_processes=args.processes, process_id=args.process,
                           local_device_count=args.local_devices)
    import jax

    jax.config.update("jax_enable_x64", True)
    import admmnn

    X_all = np.load(os.path.join(args.data, "X.npy"), mmap_mode="r")
    Y_all = np.load(os.path.join(args.data, "Y.npy"), mmap_mode="r")
    n, d = X_all.shape
    start, stop, block = distributed.row_block(n, jax.process_index(), jax.process_count(), jax.local_device_count())
    X_local = np.array(X_all[start:stop])  # only this process's rows are read
    D_local = (X_local @ gates(d, args.patterns, args.seed) >= 0).astype(np.float64)
    mesh = distributed.data_mesh()
    X, Y, D = (distributed.global_rows(mesh, a, block) for a in (X_local, np.array(Y_all[start:stop]), D_local))
    res = admmnn.solve(X, Y, D, args.beta, mesh=mesh, **solve_options(args))
    if jax.process_index() == 0:
        out = {"objective": res.objective, "dual_bound": res.dual_bound, "v": np.asarray(res.v).tolist(),
               "devices": jax.device_count(), "processes": jax.process_count(), "global_rows": int(X.shape[0]),
               "slack_devices": len(res.state.s.sharding.device_set)}
        with open(os.path.join(args.data, "distributed.json"), "w") as fh:
            json.dump(out, fh)
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def main(argv=None):
    ap = bench.parser(__doc__, quick=dict(iters=10))
    ap.add_argument("--n", type=int, default=122)
    ap.add_argument("--d", type=int, default=6)
    ap.add_argument("--patterns", type=int, default=5)
    ap.add_argument("--beta", type=float, default=1e-2)
    ap.add_argument("--solver", default="cg")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--local-devices", type=int, default=2)
    ap.add_argument("--rtol", type=float, default=1e-10)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--process", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.process is not None:
        return worker(args)
    out = bench.Results("distributed_localhost", args, __file__)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(args.seed)
        X = rng.standard_normal((args.n, args.d))
        Y = rng.standard_normal((args.n, 1))
        np.save(os.path.join(tmp, "X.npy"), X)
        np.save(os.path.join(tmp, "Y.npy"), Y)
        port = _free_port()
        env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")  # see sharded.py
        cmd = [sys.executable, os.path.abspath(__file__), "--port", str(port), "--data", tmp] + (
            argv if argv is not None else sys.argv[1:])
        procs = [subprocess.Popen(cmd + ["--process", str(i)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for i in range(args.processes)]
        logs = []
        try:
            for p in procs:
                logs.append(p.communicate(timeout=args.timeout)[0])
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        if any(p.returncode for p in procs):
            for i, log in enumerate(logs):
                print(f"--- process {i} (exit {procs[i].returncode}) ---\n{log[-3000:]}", file=sys.stderr)
            raise SystemExit(2)
        with open(os.path.join(tmp, "distributed.json")) as fh:
            dist = json.load(fh)

    import jax

    jax.config.update("jax_enable_x64", True)
    import admmnn

    D = (X @ gates(args.d, args.patterns, args.seed) >= 0).astype(np.float64)
    one = admmnn.solve(jax.numpy.asarray(X), Y, D, args.beta, anderson=0, polish=False, **solve_options(args))
    v_diff = float(np.max(np.abs(np.asarray(dist["v"]) - np.asarray(one.v))))
    report = {
        "processes": dist["processes"], "devices": dist["devices"], "global_rows": dist["global_rows"],
        "slack_devices": dist["slack_devices"], "objective_distributed": dist["objective"],
        "objective_one_process": one.objective,
        "objective_rel_diff": abs(dist["objective"] - one.objective) / abs(one.objective),
        "dual_bound_rel_diff": abs(dist["dual_bound"] - one.dual_bound) / abs(one.objective),
        "v_max_abs_diff": v_diff,
    }
    agree = report["objective_rel_diff"] <= args.rtol and v_diff <= 100 * args.rtol
    if args.out is not None:
        out.say(f"{args.processes} processes x {args.local_devices} CPU devices, n={args.n} d={args.d} P={args.patterns}, "
                f"solver {args.solver}, {args.iters} iterations: objective {dist['objective']:.12g} (one process "
                f"{one.objective:.12g}), relative difference {report['objective_rel_diff']:.1e}, "
                f"max |v difference| {v_diff:.1e}: {'agree' if agree else 'DISAGREE'} (rtol {args.rtol:g})")
        out.record.update(report, agree=agree)
        out.write()
    print(json.dumps(report))  # the last line (read by tests/core/test_sharding.py)
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
