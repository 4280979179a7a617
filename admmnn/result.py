"""What a solve returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATUSES = ("optimal", "max_iter", "time_limit", "diverged", "interrupted")


@dataclass
class SolveResult:
    """Outcome of ``admmnn.solve``.

    v : (d, 2PC) solution groups (backend array); column ``h*P*C + p*C + c``.
    network : the recovered ``ReLUNetwork``.
    objective : regularised loss of the recovered network (an upper bound).
    dual_bound : value of a dual-feasible point (a certified lower bound).
    status : one of "optimal", "max_iter", "time_limit", "diverged", "interrupted".
    history : per-check NumPy arrays: iteration, objective, dual_bound, gap,
        rel_gap, r_pri, r_dual, eps_pri, eps_dual, rho, time (seconds since start),
        and ``seconds_<phase>``: the cumulative seconds of each phase of ``timings``.
    timings : seconds in "precompute", "u", "v", "s", "dual", "check" (or, without
        profiling on an asynchronous device, "iterations" for the fused steps).
    solver : name of the u-step solver used (what "auto" chose).
    """

    v: object
    network: object
    objective: float
    dual_bound: float
    status: str
    n_iter: int
    rho: float
    solver: str
    history: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    state: object = None
    info: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """objective - dual_bound (>= 0 up to rounding)."""
        return self.objective - self.dual_bound

    @property
    def rel_gap(self) -> float:
        """gap / |objective|."""
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)

    def save(self, path) -> None:
        """Save to ``path`` (npz + JSON, no pickle; see ``admmnn.io``)."""
        from .io import save

        save(self, path)

    @classmethod
    def load(cls, path, backend: str | None = None, device=None) -> "SolveResult":
        """Load a result saved by ``save``, on ``backend`` (default: the one it was saved from)."""
        from .io import load

        return load(path, backend=backend, device=device, kinds=["SolveResult"])

    def __repr__(self) -> str:
        return (
            f"SolveResult(status={self.status!r}, solver={self.solver!r}, n_iter={self.n_iter}, "
            f"objective={self.objective:.6g}, dual_bound={self.dual_bound:.6g}, rel_gap={self.rel_gap:.2e}, "
            f"neurons={self.network.width})"
        )
