"""Run by tests/test_sharding.py in a subprocess with 4 simulated CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4 set before JAX starts), so that
the other tests keep one device. Prints one JSON object of measurements; the test
asserts on them."""
import json
import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
# execute each compiled call before the next starts: simulated CPU devices share a
# small thread pool, and overlapping programs with collectives can stall there
jax.config.update("jax_cpu_enable_async_dispatch", False)
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import admmnn  # noqa: E402
from admmnn import admm, sharding  # noqa: E402
from admmnn._backend import jit  # noqa: E402
from admmnn.experiments.hlo import collectives  # noqa: E402
from admmnn.operators import Operators  # noqa: E402
from admmnn.ustep import make_usolver  # noqa: E402
from admmnn.ustep.cg import _solve  # noqa: E402

N, DIM, P = 122, 6, 5  # n is not a multiple of 4 (nor of 2 + 1): the padded path
out = {"devices": jax.device_count()}
mesh4 = Mesh(np.array(jax.devices()), ("data",))
mesh2 = Mesh(np.array(jax.devices()[:2]), ("data",))
rng = np.random.default_rng(0)
X = rng.standard_normal((N, DIM))
Y = rng.standard_normal(N)
D, _ = admmnn.gaussian_patterns(X, P, seed=0)  # drawn on the host: the same for every device count
Xj = jnp.asarray(X)
# the inner CG solved to rounding and a fixed number of iterations (tol is never met), so
# that the runs differ only by the order of floating-point sums
KW = dict(beta=1e-2, max_iter=40, tol=1e-14, inner_tol=1e-13, inner_tol_power=0.01, anderson=0, polish=False)


def compare(name, ref, res):
    out.setdefault("cpu_seconds", {})[name] = time.process_time()
    out[name] = {
        "objective_rel": abs(res.objective - ref.objective) / abs(ref.objective),
        "dual_bound_rel": abs(res.dual_bound - ref.dual_bound) / abs(ref.objective),
        "v": float(np.max(np.abs(np.asarray(res.v) - np.asarray(ref.v)))),
        "s": float(np.max(np.abs(np.asarray(res.state.s) - np.asarray(ref.state.s)))),
        "s_shape": list(res.state.s.shape),
        "n_iter": [ref.n_iter, res.n_iter],
        "padded_rows": res.info.get("padded_rows"),
        "solver": res.solver,
    }


slack = {}


def watch(k, metrics, state):
    sh = state.s.sharding
    slack.update(devices=len(sh.device_set), spec=str(sh.spec), rows=int(state.s.shape[0]),
                 row_sharded=bool(sh.is_equivalent_to(sharding.row_sharding(mesh4), 2)),
                 u_replicated=bool(state.u.sharding.is_fully_replicated))


for solver, extra in (("cg", {}), ("pcg-nystrom-block", {"rank": 8})):
    ref = admmnn.solve(Xj, Y, D, solver=solver, **KW, **extra)
    res = admmnn.solve(Xj, Y, D, solver=solver, mesh=mesh4, callback=watch if solver == "cg" else None, **KW, **extra)
    compare(solver, ref, res)
    if solver == "cg":
        out["slack"] = dict(slack)
        compare("cg_2_devices", res, admmnn.solve(Xj, Y, D, solver=solver, mesh=mesh2, **KW))

try:
    admmnn.solve(Xj, Y, D, solver="exact", mesh=mesh4, **KW)
    out["exact_error"] = None
except ValueError as exc:
    out["exact_error"] = str(exc)

# the collectives of the compiled u-step: one all-reduce of G^T (s - nu) per right-hand side,
# one of F^T F u per CG iteration
Xs, Ys, Ds = sharding.shard_rows(mesh4, Xj, jnp.asarray(Y[:, None]), jnp.asarray(D), pad=sharding.padding(N, mesh4))
op = Operators(Xs, Ds, 1)
st = admm.init_state(op)
FTY = op.FT(Ys)
us = make_usolver("cg", op, 1.0)
b = admm.u_rhs(op, FTY, 1.0, st)
out["collectives"] = {
    "u_rhs": collectives(jit(admm.u_rhs, Xs).lower(op, FTY, 1.0, st).compile().as_text()),
    "cg": collectives(jit(_solve, Xs).lower(us, b, st.u, 1e-3).compile().as_text()),
}
out["shape_u"] = [DIM, 2 * D.shape[1]]
out["cpu_seconds"]["collectives"] = time.process_time()

# the estimator: patterns drawn before sharding, so the fit matches the one-device fit
Xe, ye = X[:60], np.sign(Y[:60])
opts = {k: v for k, v in KW.items() if k not in ("beta", "max_iter", "tol")}
fits = [admmnn.ConvexReLUClassifier(n_patterns=4, beta=1e-2, solver="cg", max_iter=30, tol=1e-14, backend="jax",
                                    mesh=mesh, solve_options=opts).fit(Xe, ye) for mesh in (None, mesh4)]
out["estimator"] = {
    "objective_rel": abs(fits[1].result_.objective - fits[0].result_.objective) / abs(fits[0].result_.objective),
    "decision": float(np.max(np.abs(np.asarray(fits[1].decision_function(Xe)) - np.asarray(fits[0].decision_function(Xe))))),
    "mesh_devices": fits[1].result_.info.get("mesh_devices"),
}
out["cpu_seconds"]["estimator"] = time.process_time()
print(json.dumps(out))
sys.stdout.flush()
