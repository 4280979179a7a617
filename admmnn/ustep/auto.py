"""``solver="auto"``: the u-step solver chosen from a measured crossover table.

``benchmarks/crossover.py`` solves Fashion-MNIST problems of several shapes
(n, d, P, C) with every u-step solver on a 2-core CPU, float64, ``solve()``
defaults, and writes ``crossover.csv`` next to this file: one row per shape and
solver with the seconds (precompute included) to a certified relative gap of
1e-2 and 1e-3, the gap reached within the time cap, and the seconds per
iteration.

``choose`` takes the measured shape nearest to the problem's (distance in
``log n``, ``log d`` and ``log(P C)``), drops the solvers whose memory does not
fit in the budget, and ranks the rest by what the table measured there: time to
gap 1e-3, then time to gap 1e-2, then the gap reached within the cap, then the
seconds per iteration (where no solver certified anything). It picks
the first, so it never picks a solver that the table shows slower than another
one that fits. The returned ``Choice`` says what it picked and why; ``solve``
stores it in ``result.info["auto"]``.
"""
from __future__ import annotations

import csv
import math
import os
from functools import lru_cache
from typing import NamedTuple

from .exact import exact_bytes

#: the committed table (written by benchmarks/crossover.py)
TABLE = os.path.join(os.path.dirname(__file__), "crossover.csv")
#: solvers that keep a Nyström sketch of (2 d P C, rank) numbers, and their largest default rank
_SKETCH_RANK = {"pcg-nystrom": 200, "pcg-nystrom-block": 200, "rbcd-nystrom": 100}


class Row(NamedTuple):
    """One measurement: a shape, a solver, seconds to gap 1e-2 / 1e-3 (inf: not
    reached within the cap), the gap reached, seconds per iteration."""

    n: int
    d: int
    P: int
    C: int
    solver: str
    to_gap_2: float
    to_gap_3: float
    final_gap: float
    per_iter: float

    def key(self) -> tuple[float, float, float, float]:
        """Faster first: time to gap 1e-3, then to 1e-2, then the gap reached within
        the cap (to two digits), then the seconds per iteration."""
        return (self.to_gap_3, self.to_gap_2, round(self.final_gap, 2), self.per_iter)


class Choice(NamedTuple):
    """What ``choose`` picked: ``solver``, the nearest measured ``shape``
    (n, d, P, C), the ``ranking`` there (solver names, fastest first, memory
    permitting), the solvers ``excluded`` by the memory budget and a sentence
    ``reason``."""

    solver: str
    shape: tuple[int, int, int, int] | None
    ranking: tuple[str, ...]
    excluded: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict:
        return {"solver": self.solver, "shape": self.shape, "ranking": list(self.ranking),
                "excluded": list(self.excluded), "reason": self.reason}


def solver_bytes(name: str, n: int, d: int, groups: int, itemsize: int = 8) -> int:
    """Bytes a u-step solver allocates beyond the iterates: the n x n factors for
    "exact", the Nyström sketch (2 d P C x its largest rank, a few copies) for the
    Nyström solvers, nothing of note otherwise (``groups`` = 2 P C)."""
    if name == "exact":
        return exact_bytes(n, d, itemsize)
    if name in _SKETCH_RANK:
        N = d * groups
        return 3 * N * min(_SKETCH_RANK[name], N) * itemsize
    return 0


@lru_cache(maxsize=4)
def load_table(path: str = TABLE) -> tuple[Row, ...]:
    """The crossover table's rows (empty if the file is missing)."""
    if not os.path.exists(path):
        return ()
    rows = []
    with open(path, newline="") as fh:
        for rec in csv.DictReader(fh):
            rows.append(Row(int(rec["n"]), int(rec["d"]), int(rec["P"]), int(rec["C"]), rec["solver"],
                            float(rec["to_gap_1e-2_s"]), float(rec["to_gap_1e-3_s"]), float(rec["final_gap"]),
                            float(rec["s_per_iter"])))
    return tuple(rows)


def _distance(shape, n, d, PC) -> float:
    sn, sd, sP, sC = shape
    return math.hypot(math.log(sn / n), math.log(sd / d), math.log(sP * sC / PC))


def choose(n: int, d: int, P: int, C: int, itemsize: int, budget: int, installed, rows=None) -> Choice:
    """The u-step solver for an (n, d) problem with P patterns and C outputs whose
    solver may allocate ``budget`` bytes beyond the iterates. ``installed`` are
    the solver names available. Raises ``MemoryError`` when none fits."""
    rows = load_table() if rows is None else rows
    groups = 2 * P * C
    fits = [s for s in installed if solver_bytes(s, n, d, groups, itemsize) <= budget]
    excluded = tuple(s for s in installed if s not in fits)
    if not fits:
        need = solver_bytes("exact", n, d, groups, itemsize)
        why = "" if any(s != "exact" for s in installed) else ", and no matrix-free solver is installed"
        raise MemoryError(f"no u-step solver fits in {budget / 2**30:.2f} GiB (exact needs "
                          f"{need / 2**30:.1f} GiB{why})")
    note = f"; {', '.join(excluded)} excluded by the memory budget of {budget / 2**30:.2f} GiB" if excluded else ""
    shapes = sorted({r[:4] for r in rows if r.solver in fits}, key=lambda s: _distance(s, n, d, P * C))
    if not shapes:
        pick = "exact" if "exact" in fits else fits[0]
        return Choice(pick, None, (pick,), excluded, "no crossover table: the exact solver if it fits" + note)
    shape = shapes[0]
    here = sorted((r for r in rows if r[:4] == shape and r.solver in fits), key=Row.key)
    best = here[0]
    what = (f"{best.to_gap_3:.3g} s to gap 1e-3" if math.isfinite(best.to_gap_3) else
            f"{best.to_gap_2:.3g} s to gap 1e-2" if math.isfinite(best.to_gap_2) else
            f"gap {best.final_gap:.2g} within the time cap")
    reason = (f"fastest at the nearest measured shape n={shape[0]}, d={shape[1]}, P={shape[2]}, C={shape[3]} "
              f"({what})" + note)
    return Choice(best.solver, shape, tuple(r.solver for r in here), excluded, reason)


__all__ = ["Choice", "Row", "choose", "load_table", "solver_bytes", "TABLE"]
