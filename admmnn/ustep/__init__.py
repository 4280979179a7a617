"""u-step solvers behind one protocol (see ``base.USolver``)."""
from __future__ import annotations

from .._backend import host_memory_available
from . import auto
from .base import USolver, apply_A, apply_H_batch
from .cg import CGSolver, JacobiCGSolver, JacobiPreconditioner
from .exact import ExactSolver, exact_bytes
from .nystrom import BlockNystromCGSolver, NystromCGSolver, NystromPreconditioner
from .rbcd import NystromRBCDSolver, RBCDSolver

SOLVERS = {
    "exact": ExactSolver,
    "cg": CGSolver,
    "pcg-jacobi": JacobiCGSolver,
    "pcg-nystrom": NystromCGSolver,
    "pcg-nystrom-block": BlockNystromCGSolver,
    "rbcd": RBCDSolver,
    "rbcd-nystrom": NystromRBCDSolver,
}


def choose_solver(n: int, d: int, itemsize: int = 8, memory_budget: int | None = None, P: int = 10, C: int = 1) -> str:
    """The solver ``solver="auto"`` picks for an (n, d) problem with P patterns and
    C outputs: the fastest in the measured crossover table (see ``auto``) among
    those that fit in ``memory_budget`` bytes (default half the available memory)."""
    budget = host_memory_available() // 2 if memory_budget is None else memory_budget
    return auto.choose(n, d, P, C, itemsize, budget, list(SOLVERS)).solver


def make_usolver(name: str, op, rho: float, **options) -> USolver:
    """Build the u-step solver called ``name`` for operators ``op`` and ``rho``."""
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS) + ['auto']}, got {name!r}")
    return SOLVERS[name](op, rho, **options)


__all__ = [
    "USolver", "apply_A", "apply_H_batch", "ExactSolver", "exact_bytes", "CGSolver", "JacobiCGSolver",
    "JacobiPreconditioner", "NystromCGSolver", "BlockNystromCGSolver", "NystromPreconditioner", "RBCDSolver", "NystromRBCDSolver", "make_usolver", "choose_solver", "SOLVERS",
]
