"""The protocol every u-step solver follows.

A u-step solver is built once from the operators and rho, then asked to solve

    A u = b,   A = I + F^T F / rho + G^T G = I + F^T F / rho + I_{2PC} (x) X^T X

for a right-hand side ``b`` of shape (d, 2PC), from a warm start ``u0``, at ADMM
iteration ``k`` (inexact solvers tighten their tolerance with k). ``with_rho``
returns a solver for a new rho, rebuilding only what depends on rho.
"""
from __future__ import annotations

from typing import Protocol


class USolver(Protocol):
    name: str
    rho: float
    #: seconds spent building, and any diagnostics (iteration counts...)
    info: dict
    #: True when ``solve`` has no host reads, so that the whole ADMM step can be compiled (JAX)
    jittable: bool

    def solve(self, b, u0, k: int):
        """Return u (d, 2PC) with A u = b (exactly or to the solver's tolerance)."""
        ...

    def with_rho(self, rho: float) -> "USolver":
        """The same solver for penalty ``rho``."""
        ...


def apply_A(op, XtX, u, rho):
    """Matrix-free ``A u`` for u (d, 2PC): two GEMMs with X, one with X^T X."""
    return u + op.FT(op.F(u)) / rho + XtX @ u


def apply_H_batch(op, U, rho):
    """The PSD part ``H = F^T F / rho + G^T G`` of A applied to r vectors at once:
    U (d, 2PC, r) -> (d, 2PC, r), with two GEMMs on X and one with X^T X."""
    return op.FT_batch(op.F_batch(U)) / rho + op.gram_batch(U)


class ToleranceSchedule:
    """Relative tolerance ``max(tol0 * k**-power, tol_min)`` at ADMM iteration k.

    With ``power > 1`` the errors are summable, the condition under which inexact
    ADMM still converges (Eckstein & Bertsekas 1992); ``tol_min`` only guards
    against asking for less than rounding allows. A callable ``schedule(k)`` may
    replace the rule.
    """

    def __init__(self, tol0: float = 1e-2, power: float = 1.2, tol_min: float = 1e-12, schedule=None):
        if not (tol0 > 0 and power > 0 and tol_min >= 0):
            raise ValueError("inner_tol, inner_tol_power must be > 0 and inner_tol_min >= 0")
        self.tol0, self.power, self.tol_min, self.schedule = float(tol0), float(power), float(tol_min), schedule

    def __call__(self, k: int) -> float:
        if self.schedule is not None:
            return float(self.schedule(k))
        return max(self.tol0 * max(k, 1) ** -self.power, self.tol_min)


def record(info: dict, key: str, value) -> None:
    """Append ``value`` to the list ``info[key]``."""
    info.setdefault(key, []).append(value)
