"""The interior-point oracle (the same convex program solved by cvxpy + Clarabel) and the
tests' small problems (``small_problem``); both live in the benchmark registry
(``admmnn.experiments.problems``: ``cvxpy_optimum``, ``oracle_problem``), shared with the benchmarks."""
from __future__ import annotations

from admmnn.experiments.problems import correlated, cvxpy_optimum  # noqa: F401  (re-exported for the tests)
from admmnn.experiments.problems import oracle_problem as small_problem  # noqa: F401


