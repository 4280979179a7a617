"""``solver="auto"`` follows the crossover table within the memory budget."""
from __future__ import annotations

import math

import numpy as np
import pytest

import admmnn
from admmnn import ustep
from admmnn.ustep import auto

INF = math.inf


def rows(*specs):
    return tuple(auto.Row(*shape, solver, t2, t3, gap, 0.1) for shape, solver, t2, t3, gap in specs)


SMALL, LARGE = (1000, 100, 10, 1), (20000, 800, 50, 1)
TABLE = rows(
    (SMALL, "exact", 0.5, 1.0, 1e-4), (SMALL, "cg", 3.0, 20.0, 1e-4), (SMALL, "pcg-jacobi", 2.0, INF, 5e-3),
    (LARGE, "exact", 5.0, INF, 2e-3), (LARGE, "cg", INF, INF, 0.5), (LARGE, "pcg-jacobi", 30.0, INF, 4e-3),
)
INSTALLED = ["exact", "cg", "pcg-jacobi"]


def test_committed_table_covers_every_solver():
    table = auto.load_table()
    assert table, "admmnn/ustep/crossover.csv is missing or empty"
    assert {r.solver for r in table} >= set(ustep.SOLVERS)


def test_follows_the_table_at_the_nearest_shape():
    c = auto.choose(1200, 90, 10, 1, 8, 1 << 40, INSTALLED, TABLE)
    assert (c.solver, c.shape, c.ranking) == ("exact", SMALL, ("exact", "cg", "pcg-jacobi"))
    # nearest is LARGE: nobody certified 1e-3, exact reached 1e-2 first
    c = auto.choose(15000, 700, 40, 1, 8, 1 << 40, INSTALLED, TABLE)
    assert (c.solver, c.shape) == ("exact", LARGE)
    assert "1e-2" in c.reason


def test_memory_budget_excludes_and_never_picks_a_slower_one():
    need = auto.solver_bytes("exact", 15000, 700, 80)
    c = auto.choose(15000, 700, 40, 1, 8, need - 1, INSTALLED, TABLE)
    assert c.solver == "pcg-jacobi" and c.excluded == ("exact",)
    assert "memory budget" in c.reason
    # the pick is never slower in the table than another solver that fits
    here = {r.solver: r for r in TABLE if r[:4] == LARGE}
    assert all(here[c.solver].key() <= here[s].key() for s in c.ranking)


def test_nothing_fits_is_a_memory_error():
    with pytest.raises(MemoryError, match="no u-step solver fits"):
        auto.choose(10**6, 700, 40, 1, 8, 10, ["exact", "pcg-nystrom"], TABLE)


def test_solve_reports_what_auto_chose_and_why():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((60, 5)), np.ones(60)]
    y = np.sign(rng.standard_normal(60))
    D, _ = admmnn.gaussian_patterns(X, 4, seed=0)
    res = admmnn.solve(X, y, D, 1e-2, solver="auto", max_iter=20)
    choice = res.info["auto"]
    assert choice["solver"] == res.solver and choice["reason"]
    assert res.solver == auto.choose(60, 6, 4, 1, 8, 1 << 40, list(ustep.SOLVERS)).solver
    # the same problem with a budget too small for the n x n factor goes matrix-free
    small = admmnn.memory.iterate_bytes(60, 6, 8) + auto.solver_bytes("exact", 60, 6, 8) - 1
    res = admmnn.solve(X, y, D, 1e-2, solver="auto", max_iter=20, memory_budget=small)
    assert res.solver != "exact" and "exact" in res.info["auto"]["excluded"]
