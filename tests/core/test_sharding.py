"""Row-sharded solves on a JAX mesh (``admmnn.sharding``, ``admmnn.distributed``).

Runs with several devices happen in subprocesses (4 simulated CPU devices, or two
processes with two devices each), so that this process keeps one device."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from admmnn import admm, certificate, distributed, sharding
from admmnn.operators import Operators

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = HERE
while not os.path.exists(os.path.join(ROOT, "pyproject.toml")) and os.path.dirname(ROOT) != ROOT:
    ROOT = os.path.dirname(ROOT)  # the repository root, wherever tests/ keeps this file
jax = pytest.importorskip("jax")


def _run(cmd, env_extra, timeout=900):
    env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("XLA_FLAGS", None)
    env.update(env_extra)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def four():
    """Measurements of tests/sharding_run.py on 4 simulated CPU devices."""
    return _run([sys.executable, os.path.join(HERE, "sharding_run.py")],
                {"XLA_FLAGS": "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"})


@pytest.mark.parametrize("solver", ["cg", "pcg-nystrom-block"])
def test_four_devices_give_the_one_device_result(four, solver):
    assert four["devices"] == 4
    r = four[solver]
    assert r["solver"] == solver and r["n_iter"][0] == r["n_iter"][1]
    assert r["objective_rel"] <= 1e-10
    assert r["v"] <= 1e-8
    assert r["dual_bound_rel"] <= 1e-8
    # n = 122 is not a multiple of 4: two zero rows were added, and the user sees the 122 real ones
    assert r["padded_rows"] == 2 and r["s_shape"] == [122, 10]
    assert r["s"] <= 1e-8


def test_slack_stays_sharded_and_weights_replicated(four):
    s = four["slack"]
    assert s["devices"] == 4 and s["row_sharded"] and s["rows"] == 124
    assert s["u_replicated"]


def test_same_result_on_two_and_four_devices(four):
    r = four["cg_2_devices"]
    assert r["objective_rel"] <= 1e-10 and r["v"] <= 1e-8 and r["padded_rows"] == 0


def test_exact_solver_refused_with_a_mesh(four):
    msg = four["exact_error"]
    assert msg is not None and "not row-sharded" in msg
    for name in ("cg", "pcg-jacobi", "pcg-nystrom"):
        assert name in msg


def test_one_all_reduce_per_operator(four):
    d, k = four["shape_u"]  # (d, 2PC)
    rhs, cg = four["collectives"]["u_rhs"], four["collectives"]["cg"]
    # G^T (s - nu): one all-reduce of a d x 2PC array
    assert [(c["kind"], c["shapes"]) for c in rhs] == [("all-reduce", [f"f64[{d},{k}]"])]
    # per CG iteration, F^T (F p): one all-reduce of the d x PC half (F^T's other half is its negative)
    loop = [(c["kind"], c["shapes"]) for c in cg if c["in_loop"]]
    assert loop == [("all-reduce", [f"f64[{d},{k // 2}]"])]
    assert all(c["kind"] == "all-reduce" for c in cg)


def test_estimator_on_a_mesh(four):
    e = four["estimator"]
    assert e["mesh_devices"] == 4 and e["objective_rel"] <= 1e-10 and e["decision"] <= 1e-8


def test_two_processes_agree_with_one():
    script = os.path.join(ROOT, "benchmarks", "distributed_localhost.py")
    r = _run([sys.executable, script, "--iters", "20", "--timeout", "600"], {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"})
    assert r["processes"] == 2 and r["devices"] == 4 and r["slack_devices"] == 4
    assert r["global_rows"] == 124  # 122 rows and two zero rows, one block of 62 per process
    assert r["objective_rel_diff"] <= 1e-10 and r["v_max_abs_diff"] <= 1e-8


# -- in this process (one device) ---------------------------------------------------------


def test_mesh_is_validated():
    import admmnn
    from jax.sharding import Mesh

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    D = (X @ rng.standard_normal((3, 2)) >= 0) * 1.0
    one = np.array(jax.devices()[:1])
    with pytest.raises(TypeError, match="mesh"):
        admmnn.solve(jax.numpy.asarray(X), Y, D, 1e-2, mesh="data")
    with pytest.raises(ValueError, match="mesh"):
        admmnn.solve(jax.numpy.asarray(X), Y, D, 1e-2, mesh=Mesh(one, ("batch",)))
    with pytest.raises(TypeError, match="mesh"):
        admmnn.solve(X, Y, D, 1e-2, mesh=Mesh(one, ("data",)))
    with pytest.raises(ValueError, match="polish"):
        admmnn.solve(jax.numpy.asarray(X), Y, D, 1e-2, solver="cg", polish=True, mesh=Mesh(one, ("data",)))
    assert sharding.check_solver("auto") == "auto" and sharding.check_solver("cg") == "cg"
    with pytest.raises(ValueError, match="not row-sharded"):
        sharding.check_solver("exact")


def test_auto_on_a_mesh_follows_the_rules_without_exact():
    import admmnn
    from jax.sharding import Mesh

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    D = (X @ rng.standard_normal((3, 2)) >= 0) * 1.0
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    Xj = jax.numpy.asarray(X)
    size = Xj.dtype.itemsize  # 4 unless JAX runs in float64
    # room for the n x n factor (the first rule, without a mesh), not for the Nyström sketch
    room = admmnn.ustep.sketch_bytes(20, 3, 2, 1, size) - 1
    assert admmnn.ustep.exact_bytes(20, 3, size) <= room
    budget = admmnn.memory.iterate_bytes(20, 3, 4, size) + room
    res = admmnn.solve(Xj, Y, D, 1e-2, solver="auto", mesh=mesh, max_iter=3, memory_budget=budget)
    assert (res.solver, res.info["auto"]["rule"]) == ("cg", "cg")
    assert res.info["auto"]["passed"][0] == ["exact", "a mesh: its n x n factor is not row-sharded"]


def test_zero_rows_change_nothing():
    """The padding argument of admmnn.sharding, on NumPy: with zero rows of X, D and Y
    appended, the iterates on the real rows, the objective, cone violation, dual bound
    and residual tests are the same, and the padded slack and dual stay exactly 0."""
    rng = np.random.default_rng(1)
    n, d, P, pad = 30, 4, 3, 3
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, 2))
    D = (X @ rng.standard_normal((d, P)) >= 0) * 1.0
    Xp, Yp, Dp = (np.vstack([a, np.zeros((pad, a.shape[1]))]) for a in (X, Y, D))
    op, opp = Operators(X, D, 2, 0.7), Operators(Xp, Dp, 2, 0.7, n_pad=pad)
    from admmnn.ustep import make_usolver

    runs = []
    for o, y in ((op, Y), (opp, Yp)):
        us, st = make_usolver("cg", o, 0.3, inner_tol=1e-14, max_cg_iter=200), admm.init_state(o)
        fty = o.FT(y)
        for k in range(1, 16):
            prev, st = st, admm.step(o, us, fty, 1e-2, 1.0, st, k, alpha=1.7)
        runs.append((st, admm.check(o, y, 1e-2, 0.3, st, prev, 1e-6, 1e-4)))
    (st, m), (stp, mp) = runs
    for key in m:
        np.testing.assert_allclose(mp[key], m[key], rtol=1e-12, atol=1e-14, err_msg=key)
    np.testing.assert_allclose(stp.v, st.v, rtol=1e-12, atol=1e-14)
    for name in ("s", "nu", "Gu"):
        np.testing.assert_allclose(getattr(stp, name)[:n], getattr(st, name), rtol=1e-12, atol=1e-14)
        assert not np.any(getattr(stp, name)[n:])
    assert certificate.objective(opp, st.v, Yp, 1e-2)[0] == pytest.approx(certificate.objective(op, st.v, Y, 1e-2)[0])


def test_row_blocks():
    blocks = [distributed.row_block(122, i, 2, 2) for i in range(2)]
    assert blocks == [(0, 62, 62), (62, 122, 62)]
    assert distributed.row_block(5, 3, 4, 1) == (5, 5, 2)  # the last process holds only zero rows
    with pytest.raises(ValueError, match="process_index"):
        distributed.row_block(10, 2, 2)
    with pytest.raises(ValueError, match="local_devices"):
        distributed.row_block(10, 0, 2, 0)
