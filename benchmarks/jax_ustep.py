"""Seconds per ADMM iteration of every matrix-free u-step solver under JAX (CPU,
float64), before (a git ref, default ``main``) and after (this tree) the compiled
u-steps of issue 12, side by side in one run.

The problem is synthetic and Fashion-MNIST-shaped: n = 2000, d = 784 + bias, P = 20,
binary targets; the pixels are correlated through 30 latent factors plus noise and
standardised. Each (solver, version) pair runs in its own subprocess with that
version's ``admmnn`` first on ``sys.path`` (the "before" copy is ``git archive``d into
a temporary folder), one thread, the versions of a solver back to back (and in
alternating order over ``--rounds``). In the subprocess a first solve of 5 iterations
compiles everything; a second solve of the same problem is then timed: its
precompute and its seconds per iteration between the checks at iterations 5 and
``--iters``. The inner work is bounded so that the run takes minutes, the same for
both versions: ``max_cg_iter=50``, Nyström ranks at most 50 (25 per RBCD block).
Also printed: the first solve's precompute (JAX compilation included), the inner
iterations per u-step and the objective reached (RBCD's line search and block order
changed, so its iterates differ; the others agree up to rounding).

Usage: python benchmarks/jax_ustep.py [--before main] [--iters 15] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOLVERS = ["cg", "pcg-jacobi", "pcg-nystrom", "pcg-nystrom-block", "rbcd", "rbcd-nystrom"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}

OPTIONS = {"cg": dict(max_cg_iter=50), "pcg-jacobi": dict(max_cg_iter=50),
           "pcg-nystrom": dict(max_cg_iter=50, max_rank=50), "pcg-nystrom-block": dict(max_cg_iter=50, max_rank=50),
           "rbcd": {}, "rbcd-nystrom": dict(max_block_rank=25)}

CHILD = r"""
import json, sys
path, data, solver, iters, options = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
sys.path.insert(0, path)
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import admmnn
from admmnn._backend import asarray
assert admmnn.__file__.startswith(path), admmnn.__file__
z = np.load(data)
X, Y, D = (asarray(z[k], "jax", "float64") for k in ("X", "Y", "D"))
kw = dict(solver=solver, check_every=5, tol=1e-14, adapt_rho=False, polish=False, **options)
first = admmnn.solve(X, Y, D, float(z["beta"]), max_iter=5, **kw)
res = admmnn.solve(X, Y, D, float(z["beta"]), max_iter=iters, **kw)
t = dict(zip(res.history["iteration"], res.history["time"]))
info = res.info
print(json.dumps({"first_precompute_s": first.timings["precompute"], "precompute_s": res.timings["precompute"],
                  "per_iter_s": (t[iters] - t[5]) / (iters - 5),
                  "inner": info.get("cg_iters_mean", info.get("rbcd_sweeps_mean")),
                  "rank": info.get("nystrom_rank", info.get("rbcd_block_ranks")), "objective": res.objective}))
"""


def make_problem(n=2000, d=784, P=20, factors=30, beta=1e-3, seed=0):
    """Fashion-MNIST-shaped synthetic data: X (n, d + 1) standardised with a bias
    column, +-1 labels from a planted ReLU network, P Gaussian patterns."""
    import admmnn

    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, factors))
    X = Z @ rng.standard_normal((factors, d)) + rng.standard_normal((n, d))
    X = np.c_[(X - X.mean(0)) / X.std(0), np.ones(n)]
    y = np.sign(np.maximum(X @ rng.standard_normal((d + 1, 8)), 0) @ rng.standard_normal(8) + 1e-12)
    D, _ = admmnn.gaussian_patterns(X, P, seed=seed)
    return X, y, D, beta


def run(path, data, solver, iters):
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": ""}
    options = json.dumps(OPTIONS.get(solver, {}))
    out = subprocess.run([sys.executable, "-c", CHILD, path, data, solver, str(iters), options], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="main", help="git ref of the 'before' version")
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=1, help="repetitions of each pair (the best is kept)")
    ap.add_argument("--solvers", nargs="*", default=SOLVERS)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "jax_ustep.txt"))
    args = ap.parse_args()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", args.before], capture_output=True, text=True,
                         check=True).stdout.strip()
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        before = os.path.join(tmp, "before")
        os.makedirs(before)
        archive = subprocess.run(["git", "-C", ROOT, "archive", args.before, "admmnn"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
        data = os.path.join(tmp, "problem.npz")
        X, y, D, beta = make_problem()
        np.savez(data, X=X, Y=y, D=D, beta=beta)
        rows, t0 = [], time.perf_counter()
        for solver in args.solvers:
            best = {}
            for rnd in range(args.rounds):
                order = (("before", before), ("after", ROOT))
                for label, path in order[::(-1) ** rnd]:
                    r = run(path, data, solver, args.iters)
                    print(solver, label, r, flush=True)
                    if label not in best or r.get("per_iter_s", np.inf) < best[label].get("per_iter_s", np.inf):
                        best[label] = r
            rows += [(solver, "before", best["before"]), (solver, "after", best["after"])]
    lines = [
        f"# JAX CPU float64, one thread; n = {X.shape[0]}, d = {X.shape[1]} (784 + bias), P = {D.shape[1]}, "
        f"synthetic Fashion-MNIST-shaped; before = {args.before} ({rev}), after = {head} + working tree",
        f"# second solve of {args.iters} ADMM iterations (adapt_rho off, no polish), s/iter over iterations "
        f"6..{args.iters}, best of {args.rounds}; options {OPTIONS}; 1st precompute: the first solve's, JAX "
        f"compilation included; total wall {time.perf_counter() - t0:.0f} s",
        f"{'solver':18s} {'version':7s} {'1st precompute s':>16s} {'precompute s':>12s} {'s/iter':>8s} "
        f"{'after/before':>12s} {'inner':>7s} {'objective':>12s}  rank",
    ]
    per = {}
    for solver, label, r in rows:
        if "error" in r:
            lines.append(f"{solver:18s} {label:7s} error: {r['error']}")
            continue
        per[(solver, label)] = r["per_iter_s"]
        ratio = ""
        if label == "after" and (solver, "before") in per:
            ratio = f"{r['per_iter_s'] / per[(solver, 'before')]:.2f}"
        inner = "" if r["inner"] is None else f"{r['inner']:.1f}"
        lines.append(f"{solver:18s} {label:7s} {r['first_precompute_s']:16.2f} {r['precompute_s']:12.2f} "
                     f"{r['per_iter_s']:8.3f} {ratio:>12s} "
                     f"{inner:>7s} {r['objective']:12.6g}  {r['rank']}")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
