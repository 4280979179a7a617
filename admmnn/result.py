"""What a solve returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from . import io
from .certificate import ROUNDING
from ._backend import asarray, backend_of, dtype_name
from .admm import ADMMState
from .network import ReLUNetwork


class Status(str, Enum):
    """How a solve ended. A ``str``: ``res.status == "optimal"`` holds, and it prints
    and formats as its value. A running solve has no status yet (None in the loop)."""

    OPTIMAL = "optimal"  # certified relative gap and cone violation <= tol
    MAX_ITER = "max_iter"  # the iterations ran out
    TIME_LIMIT = "time_limit"  # max_time seconds passed
    DIVERGED = "diverged"  # NaN/Inf, an exploding objective or residuals
    INTERRUPTED = "interrupted"  # Ctrl-C

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


STATUSES = tuple(s.value for s in Status)


@dataclass
class SolveResult:
    """Outcome of ``admmnn.solve``.

    Attributes
    ----------
    v : backend array of shape (d, 2PC)
        Solution groups; column ``h*P*C + p*C + c``.
    network : ReLUNetwork
        The recovered network.
    objective : float
        Regularised loss of the recovered network (an upper bound).
    dual_bound : float
        Value of a dual-feasible point (a certified lower bound).
    status : Status
        A ``str``: "optimal", "max_iter", "time_limit", "diverged" or "interrupted".
    n_iter : int
        Iterations run.
    rho : float
        Final penalty of the constraint u = v.
    solver : str
        Name of the u-step solver used (what "auto" chose).
    history : dict
        Per-check NumPy arrays: iteration, objective, dual_bound, gap,
        rel_gap, r_pri, r_dual, eps_pri, eps_dual, rho, time (seconds since start),
        and ``seconds_<phase>``: the cumulative seconds of each phase of ``timings``.
    timings : dict
        Seconds in "precompute", "u", "v", "s", "dual", "check" (or, without
        profiling on an asynchronous device, "iterations" for the fused steps).
    state : ADMMState or None
        The final solver state (for warm starts).
    info : dict
        What the solve decided on the way (e.g. ``info["auto"]``, ``info["endgame_tries"]``).
    """

    v: object
    network: object
    objective: float
    dual_bound: float
    status: Status
    n_iter: int
    rho: float
    solver: str
    history: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    state: object = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.status = Status(self.status)

    @property
    def gap(self) -> float:
        """objective - dual_bound (>= 0 up to rounding)."""
        return self.objective - self.dual_bound

    @property
    def rel_gap(self) -> float:
        """``gap / |objective|``."""
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)

    def first_certified(self, eps: float) -> tuple[int | None, float | None]:
        """``(iteration, seconds)`` of the first check at which some point of the run was
        certified to ``eps``: ``-1e-12 <= (objective - best bound so far) / |objective| <= eps``
        and cone violation <= eps (``(None, None)`` if none was). Histories written before
        the best bound was recorded use each check's own bound."""
        h = self.history
        if "iteration" not in h or len(h["iteration"]) == 0:
            return None, None
        bound = h["best_bound"] if "best_bound" in h else h["dual_bound"]
        rel = (h["objective"] - bound) / np.maximum(np.abs(h["objective"]), np.finfo(float).tiny)
        ok = np.flatnonzero((rel >= -ROUNDING) & (rel <= eps) & (h["cone_violation"] <= eps))
        return (int(h["iteration"][ok[0]]), float(h["time"][ok[0]])) if len(ok) else (None, None)

    def save(self, path) -> None:
        """Save to ``path`` (npz + JSON, no pickle; see ``admmnn.io``)."""
        io.save(self, path)

    @classmethod
    def load(cls, path, backend: str | None = None, device=None) -> "SolveResult":
        """Load a result saved by ``save``, on ``backend`` (default: the one it was saved from)."""
        return io.load(path, backend=backend, device=device, kinds=[cls.__name__])

    def _file_parts(self) -> tuple[dict, dict]:
        arrays, meta = self.to_arrays()
        return arrays, dict(meta, kind=type(self).__name__)

    def to_arrays(self, prefix: str = "") -> tuple[dict, dict]:
        """(arrays, meta): the result as named arrays (names start with ``prefix``)
        and JSON metadata, for ``admmnn.io.write_npz``."""
        net = self.network
        arrays = {f"{prefix}v": self.v, f"{prefix}network/W1": net.W1, f"{prefix}network/W2": net.W2}
        if net.b1 is not None:
            arrays[f"{prefix}network/b1"] = net.b1
        if self.state is not None:
            arrays.update({f"{prefix}state/{f}": getattr(self.state, f) for f in ADMMState._fields})
        arrays.update({f"{prefix}history/{key}": np.asarray(val) for key, val in self.history.items()})
        meta = {
            "objective": float(self.objective),
            "dual_bound": float(self.dual_bound),
            "status": self.status.value,
            "n_iter": int(self.n_iter),
            "rho": float(self.rho),
            "solver": self.solver,
            "timings": io.json_loose(self.timings),
            "info": io.json_loose(self.info),
            "backend": backend_of(self.v),
            "dtype": dtype_name(self.v),
        }
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict, backend: str | None = None, device=None,
                    prefix: str = "") -> "SolveResult":
        """The inverse of ``to_arrays``, arrays on ``backend`` (default: the saved one)."""
        backend = backend or meta.get("backend", "numpy")

        def get(name):
            a = arrays.get(prefix + name)
            return None if a is None else asarray(a, backend, a.dtype.name, device)

        if meta.get("status") not in STATUSES:
            raise io.ModelFileError(f"unknown solve status {meta.get('status')!r}")
        state = None
        if all(f"{prefix}state/{f}" in arrays for f in ADMMState._fields):
            state = ADMMState(*(get(f"state/{f}") for f in ADMMState._fields))
        hist = prefix + "history/"
        return cls(
            v=get("v"),
            network=ReLUNetwork(get("network/W1"), get("network/W2"), get("network/b1")),
            objective=float(meta["objective"]),
            dual_bound=float(meta["dual_bound"]),
            status=meta["status"],
            n_iter=int(meta["n_iter"]),
            rho=float(meta["rho"]),
            solver=str(meta["solver"]),
            history={k[len(hist):]: np.asarray(v) for k, v in arrays.items() if k.startswith(hist)},
            timings=dict(meta.get("timings", {})),
            state=state,
            info=dict(meta.get("info", {})),
        )

    def __repr__(self) -> str:
        return (
            f"SolveResult(status={self.status.value!r}, solver={self.solver!r}, n_iter={self.n_iter}, "
            f"objective={self.objective:.6g}, dual_bound={self.dual_bound:.6g}, rel_gap={self.rel_gap:.2e}, "
            f"neurons={self.network.width})"
        )


io.register("SolveResult", SolveResult.from_arrays)
