"""Row-sharded ADMM on simulated CPU devices: time per iteration and collectives.

    python benchmarks/sharded.py                     # 1, 2 and 4 devices (one subprocess each)
    python benchmarks/sharded.py --devices 1 2 --n 4000 --solver cg

For each device count p a subprocess starts JAX with
``--xla_force_host_platform_device_count=p`` and solves one synthetic problem
(float64, Gaussian patterns drawn on the host, so D is the same for every p) with
``admmnn.solve(..., mesh=Mesh(devices, ("data",)))``. It reports

* seconds per iteration: ``(T(K2) - T(K1)) / (K2 - K1)``, T(K) the best of
  ``--repeats`` wall times of a solve of K iterations (compiled beforehand; the
  checks every 10 iterations and the Nyström precompute are included/cancel);
* the collectives per iteration, read from the compiled programs
  (``admmnn.experiments.hlo.collectives`` on ``lower(...).compile().as_text()`` of every
  compiled phase of ``admmnn.driver.Driver``): those in the CG loop's body count
  once per CG iteration (times the mean CG iterations of the run), the check's
  once per ``check_every`` iterations;
* the share of the iteration spent in communication: each all-reduce of the
  programs is timed alone (a compiled ``sum`` over the mesh of the same shape,
  best of many calls) and the per-iteration sum of those times is divided by the
  seconds per iteration.

Simulated CPU devices share the host's cores and memory, so the times show the
overhead of sharding, not a speed-up. The problem is the registry's ``planted``
(``admmnn.experiments.problems``). Results go to ``benchmarks/results/sharded_cpu.json``
(a list, one entry per device count) and ``.txt``; ``--out`` is a folder (or a
``.txt``/``.json`` file naming both).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from admmnn.experiments import bench
from admmnn.experiments.problems import planted


def _best(fn, repeats):
    """The least wall seconds of ``repeats`` calls of ``fn``, and its last return value."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def programs(X, Y, D, mesh, solver, beta, check_every):
    """The compiled programs of one iteration on ``mesh``: {phase: (hlo text, calls per ADMM iteration)};
    the CG solve's loop body is flagged by ``collectives``."""
    import importlib

    from admmnn import admm, sharding
    from admmnn._backend import jit
    from admmnn.driver import Driver
    from admmnn.operators import Operators
    from admmnn.ustep import make_usolver
    from admmnn.ustep.cg import _solve

    import jax.numpy as jnp

    X, Y, D = sharding.shard_rows(mesh, jnp.asarray(X), jnp.asarray(Y), jnp.asarray(D))
    defaults = importlib.import_module("admmnn.solve")
    op = Operators(X, D, Y.shape[1], defaults.default_rho_ratio(X) ** 0.5)
    rho = defaults.default_penalty(X, Y, beta)
    us = make_usolver(solver, op, rho)
    drv = Driver(op, us, Y, beta, alpha=1.7, memory=5, profile=False)  # memory only for the Anderson program
    pt = drv.start(admm.init_state(op))
    st = pt.x
    b = admm.u_rhs(op, drv.FTY, rho, st)

    def text(f, *args):
        return f.lower(*args).compile().as_text()

    return {
        "u_rhs": (text(jit(admm.u_rhs, X), op, drv.FTY, rho, st), 1.0),
        "u_solve": (text(jit(_solve, X), us, b, st.u, 1e-3), 1.0),
        "v": (text(drv._v, op, st, beta, rho, 1.7), 1.0),
        "s": (text(drv._s, op, st, 1.7), 1.0),
        "dual": (text(drv._dual, st, st, 1.0, 1.7), 1.0),
        "anderson": (text(drv._accel, pt.accel, st, st, 1.0), 0.0),  # off on a mesh by default (see solve)
        "check": (text(drv._check, drv.cert_op, drv.cert_Y, beta, rho, st, st, 1e-6, 1e-4), 1.0 / check_every),
    }


def time_allreduce(mesh, shape, dtype, reps=50):
    """Seconds of one all-reduce of ``shape`` over ``mesh``: ``reps`` chained ``psum`` in one
    compiled loop, minus the same program with one, divided by ``reps - 1`` (no launch cost)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec

    from admmnn import sharding

    p = int(mesh.shape[sharding.AXIS])
    if p == 1:
        return 0.0
    size = 1
    for dim in shape:
        size *= int(dim)
    x = jax.device_put(jnp.ones((p * size,), dtype=dtype), jax.sharding.NamedSharding(mesh, PartitionSpec("data")))

    def program(count):
        def local(c):
            return jax.lax.fori_loop(0, count, lambda i, a: jax.lax.psum(a, sharding.AXIS) * (1.0 / p), c)

        spec = PartitionSpec(sharding.AXIS)
        return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))

    times = []
    for count in (1, reps):
        f = program(count)
        f(x).block_until_ready()
        times.append(_best(lambda: f(x).block_until_ready(), 20)[0])
    return max(times[1] - times[0], 0.0) / (reps - 1)


def worker(args):
    import jax

    jax.config.update("jax_enable_x64", True)
    # each compiled call finishes before the next starts (simulated devices share a thread pool)
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh

    import admmnn
    from admmnn.experiments.hlo import collectives

    p = args.worker
    mesh = Mesh(np.array(jax.devices()[:p]), ("data",))
    X, Y, D, _ = planted(n=args.n, d=args.d, P=args.patterns, C=args.outputs, beta=args.beta)
    Xj = jnp.asarray(X)
    kw = dict(beta=args.beta, solver=args.solver, tol=1e-14, mesh=mesh, check_every=args.check_every)

    def run(k):
        return admmnn.solve(Xj, Y, D, max_iter=k, **kw)

    log = lambda *a: print(f"[{p} devices]", *a, file=sys.stderr, flush=True)  # noqa: E731
    run(args.k1)  # compile (the programs depend on the shapes, not on the iteration count)
    log("compiled")
    t1, _ = _best(lambda: run(args.k1), args.repeats)
    t2, res = _best(lambda: run(args.k2), args.repeats)
    log("timed")
    per_iter = (t2 - t1) / (args.k2 - args.k1)
    cg_iters = float(res.info.get("cg_iters_mean", 1.0))
    rows, comm, nbytes, count, anderson_bytes = [], 0.0, 0.0, 0.0, 0.0
    timed = {}
    log("collectives")
    for phase, (hlo, calls) in programs(X, Y, D, mesh, args.solver, args.beta, args.check_every).items():
        for c in collectives(hlo):
            times = calls * (cg_iters if c["in_loop"] else 1.0)
            key = tuple(c["shapes"])
            if key not in timed and times > 0:
                dtype = "float64" if any(s.startswith("f64") for s in key) else "float32"
                timed[key] = sum(time_allreduce(mesh, tuple(int(x) for x in s[s.index("[") + 1:-1].split(",") if x),
                                                dtype) for s in key)
            rows.append(dict(c, phase=phase, per_iteration=times, seconds=timed.get(key, 0.0)))
            if phase == "anderson":
                anderson_bytes += c["bytes"]
            count += times
            nbytes += times * c["bytes"]
            comm += times * timed.get(key, 0.0)
    out = {
        "devices": p, "n": args.n, "d": args.d, "P": args.patterns, "C": args.outputs, "solver": args.solver,
        "seconds_per_iteration": per_iter, "cg_iters_mean": cg_iters, "collectives_per_iteration": count,
        "bytes_allreduced_per_iteration": nbytes, "comm_seconds_per_iteration": comm,
        "comm_share": comm / per_iter if per_iter > 0 else float("nan"), "objective": res.objective,
        "anderson_bytes_per_iteration": anderson_bytes,
        "collectives": rows, "jax": jax.__version__,
    }
    print(json.dumps(out))


def main(argv=None):
    ap = bench.parser(__doc__, quick=dict(devices=[1, 2], n=200, d=8, patterns=3, outputs=1, k1=2, k2=4, repeats=1))
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--d", type=int, default=48)
    ap.add_argument("--patterns", type=int, default=8)
    ap.add_argument("--outputs", type=int, default=2)
    ap.add_argument("--beta", type=float, default=1e-2)
    ap.add_argument("--solver", default="pcg-nystrom-block")
    ap.add_argument("--check-every", type=int, default=10)
    ap.add_argument("--k1", type=int, default=5)
    ap.add_argument("--k2", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker(args)
    out = bench.Results("sharded_cpu", args, __file__)
    results = []
    for p in args.devices:
        # one thread per device inside XLA: with Eigen's multi-threaded kernels, a device blocked in an
        # all-reduce can starve the pool that the other device's GEMM waits on (seen on 2 cores)
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={p} --xla_cpu_multi_thread_eigen=false",
                   JAX_PLATFORMS="cpu")
        cmd = [sys.executable, __file__, "--worker", str(p)] + [a for a in (argv or sys.argv[1:])]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{p} devices: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    lines = [f"row-sharded ADMM, simulated CPU devices (jax {results[0]['jax']}, {os.cpu_count()} cores), "
             f"n={args.n} d={args.d} P={args.patterns} C={args.outputs} float64, solver {args.solver}",
             "devices  s/iter  ratio-to-1  CG-iters  collectives/iter  MiB all-reduced/iter  comm share"]
    base = results[0]["seconds_per_iteration"]
    for r in results:
        lines.append(f"{r['devices']:7d}  {r['seconds_per_iteration']:.4f}  {r['seconds_per_iteration'] / base:10.2f}  "
                     f"{r['cg_iters_mean']:8.1f}  {r['collectives_per_iteration']:16.1f}  "
                     f"{r['bytes_allreduced_per_iteration'] / 2**20:20.3f}  {r['comm_share']:10.1%}")
    lines.append("with anderson=5 (off by default on a mesh), one iteration would add "
                 + ", ".join(f"{r['anderson_bytes_per_iteration'] / 2**20:.2f} MiB" for r in results)
                 + " of collectives (all-gathers of the slack and its dual)")
    lines.append("per program (one call; in_loop: once per CG iteration; x0: not run), at the largest device count:")
    for c in results[-1]["collectives"]:
        lines.append(f"  {c['phase']:9s} {c['kind']:11s} {'+'.join(c['shapes']):28s} {c['bytes']:9d} B  "
                     f"in_loop={c['in_loop']}  x{c['per_iteration']:.2f}/iter")
    for line in lines:
        out.say(line)
    out.write(results)


if __name__ == "__main__":
    main()
