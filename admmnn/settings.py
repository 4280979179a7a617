"""The settings of one solve, validated once at the edge and frozen."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validation import check_bool, check_choice, check_positive

STOP_RULES = ("gap", "residuals", "both")


@dataclass(frozen=True)
class Settings:
    """What ``solve`` was asked for, apart from the data, the solver and the starting point
    (see ``solve``'s docstring for each). ``anderson`` and ``polish`` may still be None
    (decided from the problem); ``memory_budget`` in bytes or None; ``profile``: time the
    phases separately."""

    beta: float
    max_iter: int
    tol: float
    rho: float | None
    rho_ratio: float | None
    alpha: float
    gamma: float
    anderson: int | None
    safeguard: float
    polish: bool | None
    max_time: float | None
    stop: str
    eps_abs: float
    eps_rel: float
    check_every: int
    adapt_rho: bool
    verbose: bool
    checkpoint_every: int
    memory_budget: int | None = None
    profile: bool | None = None

    def __post_init__(self):
        for name in ("beta", "tol", "eps_abs", "eps_rel"):
            check_positive(name, getattr(self, name))
        for name in ("max_iter", "check_every", "checkpoint_every"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("rho", "rho_ratio", "max_time", "memory_budget"):
            check_positive(name, getattr(self, name), allow_none=True)
        if not 0 < self.gamma < (1 + math.sqrt(5)) / 2:
            raise ValueError(f"gamma must lie in (0, 1.618), got {self.gamma!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 2):
            raise ValueError(f"alpha must lie in (0, 2), got {self.alpha!r}")
        a = self.anderson
        if a is not None and (isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a <= 100):
            raise ValueError(f"anderson must be an integer memory in [0, 100] (0: off), got {a!r}")
        if not (isinstance(self.safeguard, (int, float)) and math.isfinite(self.safeguard) and self.safeguard >= 1):
            raise ValueError(f"safeguard must be a finite number >= 1, got {self.safeguard!r}")
        check_choice("stop", self.stop, STOP_RULES)
        for name in ("adapt_rho", "verbose"):
            check_bool(name, getattr(self, name))
        if self.polish is not None:
            check_bool("polish", self.polish)
