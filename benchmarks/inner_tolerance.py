"""Inner (CG) tolerance schedules of a matrix-free u-step, side by side.

Fashion-MNIST 0 vs 6 (``problems.make_fmnist``: n = 1000, d = 785, P = 10,
beta = 1e-3), ``solve()`` defaults with tol = 1e-4, the given solver, one run per
option set (JSON; ``tol_fixed`` stands for a constant ``tol_schedule``). Prints
iterations to a certified gap of 1e-2 / 1e-3 / 1e-4 and the mean inner
iterations per u-step.

    python benchmarks/inner_tolerance.py 1000 10 pcg-nystrom-block 400 '{"inner_tol": 1e-2, "inner_tol_power": 1.2}' '{}'
"""
import sys, time, json, numpy as np
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from problems import make_fmnist
import admmnn
n = int(sys.argv[1]); P = int(sys.argv[2]); solver = sys.argv[3]; maxit = int(sys.argv[4])
X, y, D, beta = make_fmnist(n=n, P=P)
for spec in sys.argv[5:]:
    opts = json.loads(spec)
    if "tol_fixed" in opts:
        v = opts.pop("tol_fixed"); opts["tol_schedule"] = (lambda v: (lambda k: v))(v)
    t = time.perf_counter()
    res = admmnn.solve(X, y, D, beta, solver=solver, tol=1e-4, max_iter=maxit, check_every=10, **opts)
    h = res.history
    it = {g: next((int(i) for i, r, c in zip(h["iteration"], h["rel_gap"], h["cone_violation"]) if 0 <= r <= g and c <= g), None) for g in (1e-2, 1e-3, 1e-4)}
    print(f"{spec}: {time.perf_counter() - t:.1f}s {res.status} its={res.n_iter} gap={res.rel_gap:.2e} obj={res.objective:.6e} first={it} inner={res.info.get('cg_iters_mean', res.info.get('rbcd_sweeps_mean'))}", flush=True)
