"""Memory guard: estimate what a solve will allocate before allocating it.

``resolve_solver`` runs before any solver builds anything. It compares

* the iterates (two ``ADMMState``s are alive at a time: about
  ``2 * (3 d + 3 n) * 2PC`` numbers) and
* for "exact", the n x n factor (``ustep.exact_bytes``)

with the memory free where the arrays live: the GPU for CUDA torch or JAX arrays
(``_backend.free_memory``), the host otherwise, or
with the ``memory_budget`` option (bytes) when given.

* Iterates that cannot fit at all raise ``InsufficientMemoryError`` for every solver.
* The solver itself is chosen by ``ustep.auto.resolve`` (its rules, for
  "auto", compare the solvers' own estimates with a budget: half the free
  memory, or ``memory_budget``, less the iterates); when no rule fires, it is an
  ``InsufficientMemoryError``. With a mesh, an explicit "exact" is refused there.
* An explicit "exact" that cannot fit (default limit: all the free memory)
  raises ``InsufficientMemoryError`` naming the size and the alternatives.
"""
from __future__ import annotations

from . import ustep
from ._backend import free_memory as free_bytes
from .ustep.auto import size_text as _size
from .validation import check_positive


class InsufficientMemoryError(MemoryError, ValueError):
    """A solve refused before allocating because it would not fit in memory."""


def iterate_bytes(n: int, d: int, groups: int, itemsize: int = 8) -> int:
    """Bytes of the ADMM iterates: two states of 3 (d, 2PC) and 3 (n, 2PC) arrays."""
    return 2 * itemsize * 3 * (n + d) * groups


def resolve_solver(solver: str, n: int, d: int, groups: int, itemsize: int, memory_budget=None, ref=None,
                   outputs: int = 1, mesh=None) -> ustep.auto.Choice:
    """The u-step solver to build, after checking that it fits (see module doc), as
    an ``auto.Choice`` that says why (``groups`` = 2 P C, ``outputs`` = C; with a
    ``mesh``, n is the rows one device holds)."""
    check_positive("memory_budget", memory_budget, allow_none=True)
    free, where = free_bytes(ref)
    limit, what = (free, where) if memory_budget is None else (int(memory_budget), "allowed by memory_budget")
    it = iterate_bytes(n, d, groups, itemsize)
    if it > limit:
        raise InsufficientMemoryError(
            f"the ADMM iterates alone need about {_size(it)} (n={n}, d={d}, {groups} groups = 2 x patterns x outputs), "
            f"but only {_size(limit)} are {what}. Use fewer patterns, fewer samples or float32."
        )
    budget = (free // 2 if memory_budget is None else int(memory_budget)) - it
    problem = ustep.auto.Problem(n, d, groups // (2 * outputs), outputs, itemsize, budget, mesh is not None)
    try:
        choice = ustep.auto.resolve(solver, problem, list(ustep.SOLVERS))
    except MemoryError as exc:
        raise InsufficientMemoryError(f"solver='auto': {exc}") from None
    if solver == "exact":
        need = ustep.exact_bytes(n, d, itemsize)
        if need + it > limit:
            alternatives = [name for name in sorted(ustep.SOLVERS) if name != "exact"]
            alt = f"the matrix-free solvers {alternatives} or " if alternatives else ""
            raise InsufficientMemoryError(
                f"solver='exact' needs about {_size(need)} for its n x n factor (n={n}) plus {_size(it)} for the "
                f"iterates, but only {_size(limit)} are {what}; nothing was allocated. Use {alt}solver='auto' "
                "(which picks a matrix-free solver when the factor does not fit), fewer samples, float32 "
                "(half the bytes), or a larger memory_budget= if you know it fits."
            )
    return choice
