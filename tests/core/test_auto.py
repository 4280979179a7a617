"""``solver="auto"``: the rules of ``admmnn.ustep.auto``, one test per rule, and the
reason that names the rule that fired with the sizes it compared."""
from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

import admmnn
from admmnn import ustep
from admmnn.operators import Operators
from admmnn.ustep import auto, exact_bytes, sketch_bytes

INSTALLED = list(ustep.SOLVERS)
n, d, P, C = 5000, 785, 10, 1
EXACT, SKETCH = exact_bytes(n, d), sketch_bytes(n, d, P, C)


def problem(budget, mesh=False):
    return auto.Problem(n, d, P, C, 8, budget, mesh)


def test_the_shape_needs_more_for_exact_than_for_the_sketch():
    assert SKETCH < EXACT  # so that a budget between them selects each rule below


def test_rule_exact_when_its_factor_fits():
    c = auto.choose(problem(EXACT), INSTALLED)
    assert (c.solver, c.rule, c.passed) == ("exact", "exact", ())
    assert c.reason == f"rule 'exact': exact, its n x n factors (n={n}) need {EXACT} bytes <= budget {EXACT} bytes"
    c = auto.choose(problem(2 * EXACT), INSTALLED)
    assert c.reason == (f"rule 'exact': exact, its n x n factors (n={n}) need {auto.size_text(EXACT)} <= budget "
                        f"{auto.size_text(2 * EXACT)}")


def test_rule_nystrom_when_only_the_sketch_fits():
    c = auto.choose(problem(EXACT - 1), INSTALLED)
    assert (c.solver, c.rule) == ("pcg-nystrom-block", "nystrom")
    assert c.reason.startswith(f"rule 'nystrom': pcg-nystrom-block, its Nyström sketch (2dPC={2 * d * P * C}, "
                               f"rank <= 200) need {auto.size_text(SKETCH)} <= budget {auto.size_text(EXACT - 1)}")
    assert c.passed == (("exact", f"its n x n factors (n={n}) need {EXACT} bytes > budget {EXACT - 1} bytes"),)
    assert "; before it, rule 'exact': " in c.reason


def test_rule_cg_when_nothing_else_fits():
    c = auto.choose(problem(SKETCH - 1), INSTALLED)
    assert (c.solver, c.rule) == ("cg", "cg")
    assert [name for name, _ in c.passed] == ["exact", "nystrom"]
    assert f"need {SKETCH} bytes > budget {SKETCH - 1} bytes" in c.reason


def test_a_mesh_skips_exact_whatever_the_budget():
    c = auto.choose(problem(10 * EXACT, mesh=True), INSTALLED)
    assert c.rule == "nystrom" and c.passed == (("exact", "a mesh: its n x n factor is not row-sharded"),)
    assert auto.choose(problem(SKETCH - 1, mesh=True), INSTALLED).rule == "cg"


def test_a_solver_not_installed_is_passed_over():
    c = auto.choose(problem(EXACT - 1), ["exact", "cg"])
    assert c.rule == "cg" and ("nystrom", "pcg-nystrom-block is not installed") in c.passed
    with pytest.raises(MemoryError, match="no u-step solver fits: rule 'exact': .* > budget.*"
                                          "no matrix-free solver is installed"):
        auto.choose(problem(EXACT - 1), ["exact"])


def test_requested_solvers_pass_and_exact_is_refused_on_a_mesh():
    assert auto.resolve("pcg-jacobi", problem(0), INSTALLED) == ("pcg-jacobi", "requested", "requested", ())
    assert auto.resolve("pcg-jacobi", problem(0, mesh=True), INSTALLED).solver == "pcg-jacobi"
    with pytest.raises(ValueError, match="not row-sharded"):
        auto.resolve("exact", problem(10 * EXACT, mesh=True), INSTALLED)
    assert auto.resolve("auto", problem(EXACT), INSTALLED).rule == "exact"


def test_the_module_doc_table_is_RULES():
    rows = re.findall(r"^(\w+)\s+\"([\w-]+)\"\s+\S", auto.__doc__, flags=re.M)
    assert rows == [(r.name, r.solver) for r in auto.RULES]


def test_sketch_bytes_bounds_what_the_sketch_allocates():
    rng = np.random.default_rng(0)
    m, k, p, c = 200, 20, 5, 2
    X = rng.standard_normal((m, k))
    op = Operators(X, (X @ rng.standard_normal((k, p)) >= 0) * 1.0, c, 1.0)
    op.gram()
    tracemalloc.start()
    try:
        ustep.NystromPreconditioner(op, 1.0)  # base "identity": the full rank 200 here
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.5 * sketch_bytes(m, k, p, c) <= peak <= sketch_bytes(m, k, p, c)


# -- through solve: the budget selects each rule ----------------------------------------

rng = np.random.default_rng(0)
X = np.c_[rng.standard_normal((300, 5)), np.ones(300)]
y = np.sign(rng.standard_normal(300))
D, _ = admmnn.gaussian_patterns(X, 4, seed=0)
ITERATES = admmnn.memory.iterate_bytes(300, 6, 8)


@pytest.mark.parametrize("budget, rule", [
    (ITERATES + exact_bytes(300, 6), "exact"),
    (ITERATES + exact_bytes(300, 6) - 1, "nystrom"),
    (ITERATES + sketch_bytes(300, 6, 4, 1) - 1, "cg"),
])
def test_solve_reports_the_rule_that_fired(budget, rule):
    assert sketch_bytes(300, 6, 4, 1) < exact_bytes(300, 6)
    res = admmnn.solve(X, y, D, 1e-2, solver="auto", max_iter=5, memory_budget=budget)
    choice = res.info["auto"]
    assert choice["rule"] == rule and choice["solver"] == res.solver
    assert choice["reason"].startswith(f"rule {rule!r}: {res.solver}, ")


def test_solve_refuses_auto_when_not_even_cg_may_run(monkeypatch):
    monkeypatch.setattr(ustep, "SOLVERS", {"exact": ustep.ExactSolver})
    with pytest.raises(admmnn.memory.InsufficientMemoryError, match="solver='auto': no u-step solver fits"):
        admmnn.solve(X, y, D, 1e-2, solver="auto", max_iter=5, memory_budget=ITERATES + 1)
