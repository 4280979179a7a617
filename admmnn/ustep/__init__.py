"""u-step solvers behind one protocol (see ``base.USolver``)."""
from __future__ import annotations

from .._backend import host_memory_available
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


def choose_solver(n: int, d: int, itemsize: int = 8, memory_budget: int | None = None) -> str:
    """"exact" when its n x n factor fits in ``memory_budget`` bytes (default half
    the available memory), else the best matrix-free solver installed."""
    budget = host_memory_available() // 2 if memory_budget is None else memory_budget
    if exact_bytes(n, d, itemsize) <= budget:
        return "exact"
    for name in ("pcg-nystrom", "pcg-jacobi", "cg"):
        if name in SOLVERS:
            return name
    raise MemoryError(
        f"the exact solver needs about {exact_bytes(n, d, itemsize) / 2**30:.1f} GiB "
        f"but the budget is {budget / 2**30:.1f} GiB, and no matrix-free solver is installed"
    )


def make_usolver(name: str, op, rho: float, **options) -> USolver:
    """Build the u-step solver called ``name`` for operators ``op`` and ``rho``."""
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS) + ['auto']}, got {name!r}")
    return SOLVERS[name](op, rho, **options)


__all__ = [
    "USolver", "apply_A", "apply_H_batch", "ExactSolver", "exact_bytes", "CGSolver", "JacobiCGSolver",
    "JacobiPreconditioner", "NystromCGSolver", "BlockNystromCGSolver", "NystromPreconditioner", "RBCDSolver", "NystromRBCDSolver", "make_usolver", "choose_solver", "SOLVERS",
]
