"""Acceleration and penalties: the Anderson safeguard, the separate cone penalty, resume with
the accelerator's memory, and the float64 certificate of float32 iterates."""
import numpy as np
import pytest

import admmnn
from admmnn import admm, anderson
from admmnn._backend import asarray
from admmnn.driver import Driver
from admmnn.operators import Operators
from admmnn.ustep import make_usolver
from oracle import cvxpy_optimum, small_problem


def _driver(kind="binary", memory=5, safeguard=1.0, cone_scale=0.5, rho=1e-2):
    X, Y, D, beta = small_problem(kind)
    Y2 = np.asarray(Y, float).reshape(len(Y), -1)
    op = Operators(X, D, Y2.shape[1], cone_scale)
    return Driver(op, make_usolver("exact", op, rho), Y2, beta, alpha=1.7, memory=memory, safeguard=safeguard), op


def _residual(a, b):
    pa, pb = anderson.pack(np, a), anderson.pack(np, b)
    return float(np.linalg.norm(pa - pb))


def test_safeguard_rejected_step_goes_on_from_the_plain_step():
    """Every extrapolated point is either kept with a residual no larger than its base's,
    or refused, and then the next point is the plain ADMM step of the base point."""
    drv, op = _driver()
    pt = drv.start(admm.init_state(op))
    base_residual = plain_step = None
    accepted = rejected = 0
    for k in range(1, 400):
        was_extrapolated = float(pt.accel.extrapolated) > 0
        x = pt.x
        pt, fx = drv.iterate(pt, k)
        r = _residual(x, fx)
        if was_extrapolated:
            if r > base_residual:  # refused: continue from T(base)
                rejected += 1
                np.testing.assert_array_equal(anderson.pack(np, pt.x), anderson.pack(np, plain_step))
                continue
            accepted += 1
        base_residual, plain_step = r, fx
    assert accepted > 100
    assert int(pt.accel.rejected) == rejected
    assert int(pt.accel.accepted) == accepted


def test_safeguard_refuses_a_growing_residual():
    """A direct check of one update: an extrapolated point whose residual grew is refused."""
    drv, op = _driver()
    st0 = admm.init_state(op)
    aa = anderson.init(np, st0, 3)
    f_prev = st0._replace(v=st0.v + 1.0)
    aa = aa._replace(f_prev=anderson.pack(np, f_prev), r_prev=np.asarray(1e-3), extrapolated=np.asarray(1.0),
                     count=np.asarray(2.0))
    x = st0._replace(v=st0.v + 5.0)  # residual ||x - T(x)|| far above 1e-3
    nxt, new = anderson.update(np, aa, x, st0)
    np.testing.assert_array_equal(nxt.v, f_prev.v)
    assert float(new.rejected) == 1 and float(new.accepted) == 0 and float(new.extrapolated) == 0
    np.testing.assert_array_equal(new.dG, aa.dG)


def test_anderson_off_is_plain_admm():
    X, Y, D, beta = small_problem("binary")
    a = admmnn.solve(X, Y, D, beta, anderson=0, max_iter=40, tol=1e-14, adapt_rho=False)
    op = Operators(X, D, 1, np.sqrt(a.info["rho_ratio"]))
    solver = make_usolver("exact", op, a.rho)
    st = admm.init_state(op)
    FTY = op.FT(np.asarray(Y, float)[:, None])
    for k in range(1, 41):
        st = admm.step(op, solver, FTY, beta, 1.0, st, k, 1.7)
    np.testing.assert_allclose(a.v, st.v, rtol=1e-12, atol=1e-14)


def test_separate_cone_penalty_is_a_weighted_cone():
    """ADMM with penalties (rho, rho * ratio) equals ADMM with one penalty on (u = v, sigma G u = sigma s):
    one step written out by hand with the two penalties gives the same u and v."""
    X, Y, D, beta = small_problem("regression")
    Y2 = Y[:, None]
    rho, ratio = 0.05, 0.3
    op = Operators(X, D, 1, np.sqrt(ratio))
    solver = make_usolver("exact", op, rho)
    rng = np.random.default_rng(0)
    st = admm.init_state(op)._replace(v=rng.standard_normal((op.d, op.n_groups)),
                                      s=np.abs(rng.standard_normal((op.n, op.n_groups))))
    st = admm.rescale_cone(st, np.sqrt(ratio))
    new = admm.step(op, solver, op.FT(Y2), beta, 1.0, st, 1)
    # by hand, unscaled: (F^T F + rho I + rho2 G^T G) u = F^T Y + rho v + rho2 G^T s
    op1 = Operators(X, D, 1)
    rho2 = rho * ratio
    s1 = st.s / np.sqrt(ratio)
    dim = op.d * op.n_groups
    A = np.zeros((dim, dim))
    for i in range(dim):
        e = np.zeros(dim)
        e[i] = 1
        E = e.reshape(op.d, op.n_groups)
        A[:, i] = (op1.FT(op1.F(E)) + rho * E + rho2 * op1.GT(op1.G(E))).ravel()
    b = (op1.FT(Y2) + rho * st.v + rho2 * op1.GT(s1)).ravel()
    u = np.linalg.solve(A, b).reshape(op.d, op.n_groups)
    np.testing.assert_allclose(new.u, u, rtol=1e-8, atol=1e-10)


def test_resume_is_bit_identical_with_acceleration(tmp_path):
    X, Y, D, beta = small_problem("multiclass")
    kw = dict(tol=1e-14, check_every=10, adapt_rho=True)
    full = admmnn.solve(X, Y, D, beta, max_iter=230, **kw)
    path = tmp_path / "run.npz"
    admmnn.solve(X, Y, D, beta, max_iter=100, checkpoint=path, checkpoint_every=50, **kw)
    rest = admmnn.solve(X, Y, D, beta, max_iter=230, resume=path, **kw)
    assert full.info["anderson"] == 5 and rest.info["anderson_accepted"] > 0
    np.testing.assert_array_equal(full.v, rest.v)
    np.testing.assert_array_equal(full.state.nu, rest.state.nu)
    assert full.objective == rest.objective and full.dual_bound == rest.dual_bound


def test_cone_penalty_grows_when_the_violation_keeps_the_gap_open():
    X, Y, D, beta = small_problem("regression")
    # the endgame off: it would certify at iteration 100, before the rule has to act
    res = admmnn.solve(X, Y, D, beta, rho_ratio=1e-3, max_iter=600, tol=1e-6, polish=False)
    assert res.info["rho_ratio"] > 1e-3
    fixed = admmnn.solve(X, Y, D, beta, rho_ratio=1e-3, max_iter=600, tol=1e-6, adapt_rho=False, polish=False)
    assert fixed.info["rho_ratio"] == pytest.approx(1e-3)
    assert abs(res.rel_gap) < abs(fixed.rel_gap)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "correlated"])
def test_float32_certificate_is_float64_and_valid(backend, kind):
    """float32 iterates, certified in float64: a valid bound (against the optimum of the
    float32-rounded data), and a certified gap <= 1e-3 on every oracle problem."""
    X, Y, D, beta = small_problem(kind)
    X32, Y32, D32 = (np.asarray(a, np.float32) for a in (X, Y, D))
    pstar, _ = cvxpy_optimum(*(a.astype(np.float64) for a in (X32, Y32, D32)), beta)
    Xb, Yb, Db = (asarray(a, backend, "float32") for a in (X, Y, D))
    res = admmnn.solve(Xb, Yb, Db, beta, tol=1e-3)
    assert str(res.v.dtype).endswith("float32")
    assert res.status == "optimal"
    assert res.rel_gap <= 1e-3
    assert res.dual_bound <= pstar * (1 + 1e-7)
    assert abs(res.objective - pstar) / pstar <= 2e-3
