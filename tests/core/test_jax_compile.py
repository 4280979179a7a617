"""Under JAX every u-step solver compiles once per problem shape (no host reads in a
u-step, so the driver compiles the whole iteration), and the exact solver's Cholesky
factor stays exact through penalty changes."""
import collections

import numpy as np
import pytest

import admmnn
from admmnn import admm
from admmnn._backend import asarray, jit, to_numpy
from admmnn.driver import Driver, _map_and_accelerate
from admmnn.operators import Operators
from admmnn.patterns import gaussian_patterns
from admmnn.ustep import SOLVERS, ExactSolver, apply_A, make_usolver

jax = pytest.importorskip("jax")

# small ranks keep the Nyström sketches' compilations short (two doubling levels)
OPTIONS = {"pcg-nystrom": dict(rank0=4, max_rank=8), "pcg-nystrom-block": dict(rank0=4, max_rank=8),
           "rbcd-nystrom": dict(block_rank="adaptive", max_block_rank=8)}


def problem(seed, n=60, d=5, P=6):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.standard_normal((n, d - 1)), np.ones(n)]
    Y = np.maximum(X[:, 0] - X[:, 1], 0) + 0.1 * rng.standard_normal(n)
    D, _ = gaussian_patterns(X, P, seed=seed)
    return X, Y, D


class Compilations:
    """Counts XLA compilations (JAX's monitoring events) while active."""

    def __init__(self):
        self.count, self.active = 0, False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, name, secs, **kwargs):
        if self.active and name == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        self.count, self.active = 0, True
        return self

    def __exit__(self, *exc):
        self.active = False


@pytest.fixture(scope="module")
def compilations():
    return Compilations()


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_compiles_once_per_shape(compilations, solver):
    """A solve compiles its fused iteration once, whatever k, rho and the cone weight do
    (rho_ratio = 1e-4 makes the adaptive rule rebuild the solver with a new weight at
    iteration 100); a second solve on new data of the same shape compiles nothing from its
    start to its last check (precompute, rebuild, iterations, certificates)."""
    assert SOLVERS[solver].jittable
    kw = dict(solver=solver, rho_ratio=1e-4, max_iter=120, check_every=10, tol=1e-12, polish=False,
              **OPTIONS.get(solver, {}))
    fused = jit(_map_and_accelerate, jax.numpy.ones(1))
    before = fused._cache_size()
    first = admmnn.solve(*(asarray(a, "jax", "float64") for a in problem(0)), 1e-2, **kw)
    assert fused._cache_size() - before == 1
    assert len(set(first.history["rho_ratio"])) > 1  # the cone weight moved: the solver was rebuilt
    data = [asarray(a, "jax", "float64") for a in problem(1)]

    def stop_at_the_last_check(k, m, fx):  # the network recovered after it has data-dependent shapes
        if k == kw["max_iter"]:
            compilations.__exit__()

    with compilations:  # precompute, iterations and checks
        second = admmnn.solve(*data, 1e-2, callback=stop_at_the_last_check, **kw)
    assert compilations.count == 0
    # n_iter is the iteration of the point returned (the best one), the run went to 120
    assert second.history["iteration"][-1] == 120 and np.isfinite(second.objective) and second.objective >= second.dual_bound
    if solver != "exact":  # the diagnostics came back from the compiled steps (of the solver last built)
        counts = second.info["rbcd_sweeps" if solver.startswith("rbcd") else "cg_iters"]
        assert 0 < len(counts) <= 120 and min(counts) >= 1


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_u_steps_with_new_rho_and_k_do_not_recompile(compilations, solver):
    """u-steps alone: after the first, new k (tolerances, RBCD's block orders) and new
    rho compile nothing, and the answers solve A u = b."""
    X, _, D = problem(2)
    op = Operators(asarray(X, "jax"), asarray(D, "jax"), 1, 0.5)
    rng = np.random.default_rng(0)
    b = asarray(rng.standard_normal((op.d, op.n_groups)), "jax")
    s = make_usolver(solver, op, 0.3, **OPTIONS.get(solver, {}))
    u = s.solve(b, None, 1)
    s2 = s.with_rho(0.6)  # the new preconditioner factors compile here, once
    s2.solve(b, u, 2)
    s.with_rho(0.9)
    with compilations:
        for k, rho in [(3, 0.3), (4, 0.6), (9, 0.9), (10, 0.3)]:
            u = s.with_rho(rho).solve(b, u, k)
    assert compilations.count == 0
    if solver in ("exact", "cg", "pcg-jacobi", "pcg-nystrom", "pcg-nystrom-block"):
        s = s.with_rho(0.3)
        u = s.solve(b, None, 50)
        rel = np.linalg.norm(to_numpy(apply_A(op, op.gram(), u, 0.3) - b)) / np.linalg.norm(to_numpy(b))
        assert rel <= (1e-10 if solver == "exact" else 1.01 * s.tolerance(50))


def test_rbcd_line_search_is_exact():
    """One block holding every pattern, no preconditioner: one step goes along -g to
    the minimiser on that line, where the new gradient is orthogonal to the old one."""
    X, _, D = problem(3)
    op = Operators(X, D, 1, 0.5)
    rng = np.random.default_rng(1)
    b, u0 = rng.standard_normal((2, op.d, op.n_groups))
    s = make_usolver("rbcd", op, 0.2, precond="none", block_size=op.P, max_sweeps=1)
    u1 = s.solve(b, u0, 1)
    g0 = apply_A(op, op.gram(), u0, 0.2) - b
    g1 = apply_A(op, op.gram(), u1, 0.2) - b
    assert abs(np.sum(g0 * g1)) <= 1e-10 * np.sum(g0 * g0)
    assert not np.allclose(u1, u0)


def dense_A(X, D, C, rho, sigma):
    """A = I + F^T F / rho + sigma^2 G^T G, built entry by entry in the (d, 2PC) layout
    raveled row-major (variable l * 2PC + g, group g = h PC + p C + c)."""
    n, d = X.shape
    P = D.shape[1]
    k = 2 * P * C
    F = np.zeros((n * C, d * k))
    for h, sign in enumerate((1.0, -1.0)):
        for p in range(P):
            for c in range(C):
                g = h * P * C + p * C + c
                F[c::C, g::k] = sign * D[:, [p]] * X
    return np.eye(d * k) + F.T @ F / rho + sigma**2 * np.kron(X.T @ X, np.eye(k))


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_exact_factor_after_penalty_changes_through_the_driver(backend):
    """Driver.change_rho moves rho alone (with_rho: a cached or a new Cholesky factor)
    and the ratio of the two penalties (a rebuild with a new cone weight): after each,
    the exact u-step agrees with a dense solve to 1e-10 in float64."""
    X, Y, D = problem(4, n=40, d=4, P=4)
    Y2 = np.c_[Y, -Y]
    op = Operators(*(asarray(a, backend) for a in (X, D)), 2, 0.7)
    drv = Driver(op, ExactSolver(op, 1.0), asarray(Y2, backend), 1e-2)
    pt = drv.start(admm.init_state(op))
    b = np.random.default_rng(5).standard_normal((op.d, op.n_groups))
    changes = [(0.1, 1.0), (1.0, 4.0), (30.0, 1.0), (1 / 30.0, 1.0), (2.0, 0.1), (1.0, 1.0)]
    for factor, ratio in changes:
        pt = drv.change_rho(pt, factor, ratio, rebuild=lambda o, rho: ExactSolver(o, rho))
        rho, sigma = drv.rho, drv.op.cone_scale
        u = to_numpy(drv.usolver.solve(asarray(b, backend)))
        A = dense_A(X, D, 2, rho, sigma)
        u_dense = np.linalg.solve(A, b.ravel()).reshape(b.shape)
        assert np.linalg.norm(u - u_dense) <= 1e-10 * np.linalg.norm(u_dense), (factor, ratio)
    assert collections.Counter(r for _, r in changes)[1.0] == 4  # rho alone moved four times
