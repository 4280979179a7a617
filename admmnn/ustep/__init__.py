"""u-step solvers behind one protocol (see ``base.USolver``)."""
from __future__ import annotations

from . import auto
from .base import USolver, apply_A, apply_H_batch
from .cg import BlockNystromCGSolver, CGSolver, JacobiCGSolver, NystromCGSolver
from .exact import ExactSolver, exact_bytes
from .preconditioners import GramPreconditioner, JacobiPreconditioner, NystromPreconditioner, sketch_bytes
from .rbcd import NystromRBCDSolver, RBCDSolver

#: The u-step solver classes by name (the ``solver`` argument of ``admmnn.solve``).
SOLVERS = {
    "exact": ExactSolver,
    "cg": CGSolver,
    "pcg-jacobi": JacobiCGSolver,
    "pcg-nystrom": NystromCGSolver,
    "pcg-nystrom-block": BlockNystromCGSolver,
    "rbcd": RBCDSolver,
    "rbcd-nystrom": NystromRBCDSolver,
}


def make_usolver(name: str, op, rho: float, **options) -> USolver:
    """Build the u-step solver called ``name`` for operators ``op`` and ``rho``."""
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS) + ['auto']}, got {name!r}")
    return SOLVERS[name](op, rho, **options)


__all__ = [
    "auto", "USolver", "apply_A", "apply_H_batch", "ExactSolver", "exact_bytes", "CGSolver", "JacobiCGSolver",
    "JacobiPreconditioner", "GramPreconditioner", "NystromCGSolver", "BlockNystromCGSolver", "NystromPreconditioner",
    "sketch_bytes", "RBCDSolver", "NystromRBCDSolver", "make_usolver", "SOLVERS",
]
