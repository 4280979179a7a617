"""Detecting a diverging ADMM run, and the warnings a stopped solve gives.

ADMM on a convex problem converges for every rho > 0 and gamma in
(0, (1 + sqrt 5) / 2) in exact arithmetic, so divergence means trouble in
floating point: a u-step solved far too inexactly, a rho so extreme that the
system is numerically singular, data with huge entries. ``DivergenceMonitor``
looks at the metrics of each check and reports

* non-finite values (NaN or Inf) anywhere in the metrics;
* an exploding objective: above ``blowup`` times the larger of the starting
  objective and ``0.5 ||Y||^2`` (the objective of the zero network, an upper
  bound on the optimum);
* residuals growing without bound: the residual level
  ``max(r_pri, r_dual / rho)`` (both rho-free: the constraint violation and the
  change of the iterates) has risen at each of the last ``patience`` checks and
  stands more than ``growth`` times above the lowest level seen so far. The
  lowest level counts a residual below the tolerance ``eps_pri`` as
  ``eps_pri``, so rounding noise near the optimum never looks like growth.
"""
from __future__ import annotations

import math
import warnings


class DivergenceWarning(RuntimeWarning):
    """The solve diverged; the last good iterate was returned."""


class InterruptedSolveWarning(UserWarning):
    """The solve was interrupted (Ctrl-C); the last checked iterate was returned."""


class DivergenceMonitor:
    def __init__(self, objective0: float, y_energy: float, growth: float = 1e4, patience: int = 3, blowup: float = 1e6):
        self.limit = blowup * max(objective0, y_energy, 1e-300)
        self.growth = float(growth)
        self.patience = int(patience)
        self.best = math.inf
        self.last = math.inf
        self.rises = 0

    def to_dict(self) -> dict:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict) -> "DivergenceMonitor":
        new = cls.__new__(cls)
        new.__dict__.update(d)
        return new

    def update(self, m: dict, rho: float) -> str | None:
        """Record the metrics ``m`` of a check; the reason to stop, or None."""
        bad = sorted(key for key, val in m.items() if not math.isfinite(val))
        if bad:
            return f"non-finite values (NaN or Inf) in {', '.join(bad)}"
        if m["objective"] > self.limit:
            return f"the objective reached {m['objective']:.3g}, above {self.limit:.3g} (exploding iterates)"
        level = max(m["r_pri"], m["r_dual"] / rho)
        self.rises = self.rises + 1 if level > self.last else 0
        self.last = level
        self.best = min(self.best, max(level, m["eps_pri"]))
        if self.rises >= self.patience and level > self.growth * self.best:
            return (
                f"the residuals grew without bound (max(r_pri, r_dual/rho) = {level:.3g}, rising for "
                f"{self.rises} checks, {level / self.best:.3g} times its lowest level {self.best:.3g})"
            )
        return None


def warn_diverged(reason: str, k: int, k_good: int, metrics: dict, rho: float, stacklevel: int = 3) -> None:
    warnings.warn(
        f"ADMM diverged at iteration {k}: {reason}. Returning the last good iterate, from iteration {k_good} "
        f"(objective {metrics['objective']:.6g}, dual bound {metrics['dual_bound']:.6g}), with status 'diverged'. "
        f"Try: a larger rho (e.g. rho={10 * rho:.3g}), adapt_rho=True, gamma=1.0, or rescaling X and Y "
        "(standardise the features); with an inexact solver, a tighter u-step tolerance.",
        DivergenceWarning,
        stacklevel=stacklevel,
    )


def warn_interrupted(k_good: int, metrics: dict, stacklevel: int = 3) -> None:
    gap = metrics["objective"] - metrics["dual_bound"]
    warnings.warn(
        f"solve interrupted; returning the last checked iterate, from iteration {k_good} (objective "
        f"{metrics['objective']:.6g}, certified gap {gap:.3g}), with status 'interrupted'. Continue with "
        "warm_start=<this result>, or resume=<checkpoint file> when checkpoint= was set.",
        InterruptedSolveWarning,
        stacklevel=stacklevel,
    )
