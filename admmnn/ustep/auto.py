"""Which u-step solver runs: the one place that decides, by rules written down.

``resolve(solver, problem, installed)`` returns a ``Choice``: an explicit solver
is taken as asked (rule "requested"), except "exact" on a mesh, which is refused
(``check_mesh``: its n x n Cholesky factor is dense in both dimensions, so
row-sharding it would need a distributed triangular solve at every u-step,
exactly where a mesh is wanted: when n is too large for one device).
``solver="auto"`` goes to ``choose``, which takes the first rule of ``RULES``
whose test passes, as lineax's ``AutoLinearSolver`` does:

=========  =====================  ==================================================================
rule       solver                 fires when
=========  =====================  ==================================================================
exact      "exact"                no mesh, and its n x n factors (``exact_bytes``) fit in the budget
nystrom    "pcg-nystrom-block"    its Nyström sketch (``sketch_bytes``, rank up to 200) fits in the budget
cg         "cg"                   always: it needs a few (d, 2PC) vectors, fewer than the iterates
=========  =====================  ==================================================================

A rule whose solver is not installed (``ustep.SOLVERS``) is passed over; when no
rule fires, ``choose`` raises ``MemoryError``. Each test compares two numbers a
reader can redo by hand, and the ``Choice`` names the rule that fired with them
(e.g. "rule 'exact': exact, its n x n factors (n=1000) need 44.27 MiB <= budget
11.20 GiB") and why each earlier rule did not fire. ``budget`` is what a u-step
solver may allocate beyond the ADMM iterates (``memory.resolve_solver``:
``memory_budget=``, or half the memory free where the arrays live, less the
iterates); with a mesh, n and the budget are one device's.

Why this order (the committed measurements; 2-core CPU, float64, NumPy):

* exact first: where its factor fits it is the u-step that certifies soonest.
  Fashion-MNIST 0 vs 6 (n = 1000, d = 785, P = 10, beta = 1e-3): certified 1e-3
  in 12.5 s, precompute included, while each of the six matrix-free solvers was
  still at a relative gap of 0.97 or more after 20 s
  (``benchmarks/results/crossover.txt``); the default block-Nyström PCG certifies
  the same problem, but at iteration 190 against exact's 100
  (``benchmarks/results/inner_tolerance.txt``). Its precompute, one n x n
  Cholesky factor, took 18 s at n = 10 000 (``exact_precompute.txt``).
* pcg-nystrom-block next: the only matrix-free u-step that certified in those
  runs (1e-4 at iteration 290, ``inner_tolerance.txt``), with the smallest gap of
  the matrix-free solvers in ``crossover.txt``; its block base removes the
  spectrum of X^T X exactly (``preconditioners.py``,
  ``notebooks/condition_numbers.ipynb``). The same rule holds on a mesh: the
  sketch is (d, 2PC)-shaped and replicated, so its bytes are per device.
* cg last: no sketch and no n x d work. "pcg-jacobi" was no faster
  (n = 10 000, P = 50: 255.8 CG iterations per u-step against cg's 259.9, and
  81.1 s against 79.2 s to 97 % train accuracy, ``solvers_fashion_mnist.txt``)
  and squares X (n x d) to build its diagonal.

Not written as rules, for want of a measurement that says otherwise: the backend
and device (nothing yet shows exact and the matrix-free solvers crossing over
elsewhere on a GPU) and the RBCD solvers (neither certified in any committed run).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .exact import exact_bytes
from .preconditioners import sketch_bytes


class Problem(NamedTuple):
    """What the rules look at: n rows (one device's with a mesh), d columns, P
    patterns, C outputs, the bytes of one number, the ``budget`` (bytes a u-step
    solver may allocate beyond the iterates) and whether the rows are sharded
    over a ``mesh``."""

    n: int
    d: int
    P: int
    C: int
    itemsize: int
    budget: int
    mesh: bool = False


class Rule(NamedTuple):
    """``solver`` when ``test(problem)`` says so: ``test`` returns (fires, the
    comparison it made, in words)."""

    name: str
    solver: str
    test: Callable[[Problem], tuple[bool, str]]


class Choice(NamedTuple):
    """The solver to build, the ``rule`` that chose it ("requested" for an explicit
    solver), a sentence ``reason`` (that rule and the numbers it compared, then
    each earlier rule and why it did not fire) and ``passed``: (rule, why) of the
    earlier rules. ``solve`` stores ``as_dict()`` in ``result.info["auto"]``."""

    solver: str
    rule: str
    reason: str
    passed: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return {"solver": self.solver, "rule": self.rule, "reason": self.reason,
                "passed": [list(p) for p in self.passed]}


def size_text(b: float) -> str:
    """Bytes for a person: "22.97 MiB"."""
    if b < 0:
        return "-" + size_text(-b)
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.2f} {unit}"
    return f"{int(b)} bytes"


def _fits(what: str, need: int, budget: int) -> tuple[bool, str]:
    ok = need <= budget
    a, b = size_text(need), size_text(budget)
    if a == b:  # too close to tell apart when rounded: the bytes
        a, b = f"{need} bytes", f"{budget} bytes"
    return ok, f"{what} need {a} {'<=' if ok else '>'} budget {b}"


def exact_fits(p: Problem) -> tuple[bool, str]:
    """No mesh, and the exact solver's n x n factors fit in the budget."""
    if p.mesh:
        return False, "a mesh: its n x n factor is not row-sharded"
    return _fits(f"its n x n factors (n={p.n})", exact_bytes(p.n, p.d, p.itemsize), p.budget)


def sketch_fits(p: Problem) -> tuple[bool, str]:
    """The Nyström sketch of rank up to 200 fits in the budget."""
    N = 2 * p.d * p.P * p.C
    return _fits(f"its Nyström sketch (2dPC={N}, rank <= 200)", sketch_bytes(p.n, p.d, p.P, p.C, p.itemsize), p.budget)


def otherwise(p: Problem) -> tuple[bool, str]:
    """Always: CG needs a few (d, 2PC) vectors, fewer than the iterates."""
    return True, "the rules before it did not fire; it needs only a few (d, 2PC) vectors"


#: the rules of ``choose``, in order (see the module doc for why)
RULES = (
    Rule("exact", "exact", exact_fits),
    Rule("nystrom", "pcg-nystrom-block", sketch_fits),
    Rule("cg", "cg", otherwise),
)


def choose(problem: Problem, installed, rules=RULES) -> Choice:
    """The first rule of ``rules`` whose solver is in ``installed`` and whose test
    passes; ``MemoryError`` (naming every rule and why it did not fire) when none."""
    passed = []
    for rule in rules:
        if rule.solver in installed:
            fires, why = rule.test(problem)
        else:
            fires, why = False, f"{rule.solver} is not installed"
        if fires:
            before = "; before it, " + "; ".join(f"rule {n!r}: {w}" for n, w in passed) if passed else ""
            return Choice(rule.solver, rule.name, f"rule {rule.name!r}: {rule.solver}, {why}{before}", tuple(passed))
        passed.append((rule.name, why))
    free = [s for s in installed if s != "exact"]
    tail = "" if free else "; no matrix-free solver is installed"
    raise MemoryError("no u-step solver fits: " + "; ".join(f"rule {n!r}: {w}" for n, w in passed) + tail)


def check_mesh(solver: str, installed) -> str:
    """``solver`` for a row-sharded solve: "exact" is refused (ValueError), every
    other name, "auto" included, passes."""
    if solver == "exact":
        free = sorted(name for name in installed if name != "exact")
        raise ValueError(
            f"solver='exact' cannot run on a mesh: its n x n Cholesky factor is not row-sharded. "
            f"Use a matrix-free solver {free} or solver='auto' (which follows the rules of admmnn.ustep.auto "
            "without the exact one on a mesh)")
    return solver


def resolve(solver: str, problem: Problem, installed) -> Choice:
    """The solver to build for a request ``solver`` (a name of ``installed`` or
    "auto"): ``choose`` for "auto", else the name itself (refused on a mesh where
    ``check_mesh`` refuses it)."""
    if solver == "auto":
        return choose(problem, installed)
    if problem.mesh:
        check_mesh(solver, installed)
    return Choice(solver, "requested", "requested")


__all__ = ["Choice", "Problem", "Rule", "RULES", "choose", "check_mesh", "resolve", "exact_fits", "sketch_fits",
           "otherwise", "size_text"]
