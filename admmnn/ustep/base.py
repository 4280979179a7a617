"""The protocol every u-step solver follows.

A u-step solver is built once from the operators and rho, then asked to solve

    A u = b,   A = I + F^T F / rho + G^T G = I + F^T F / rho + I_{2PC} (x) X^T X

for a right-hand side ``b`` of shape (d, 2PC), from a warm start ``u0``, at ADMM
iteration ``k`` (inexact solvers tighten their tolerance with k). ``with_rho``
returns a solver for a new rho, rebuilding only what depends on rho.

``step(b, u0, k) -> (u, aux)`` is the pure form of ``solve``: ``aux`` holds the
solver's diagnostics as arrays (iteration counts...) or None, and ``record(aux)``
files them into ``info`` (read back to the host only when ``info`` is read). A
``jittable`` solver's ``step`` has no host reads and may be traced with a traced
``k`` and rho, so the driver compiles the whole ADMM iteration around it once per
problem shape.
"""
from __future__ import annotations

from typing import Protocol

from .._backend import namespace


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

    def step(self, b, u0, k):
        """``(u, aux)``: ``solve`` without side effects (aux: diagnostics or None)."""
        ...

    def record(self, aux) -> None:
        """Keep the diagnostics ``aux`` of one ``step`` for ``info``."""
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

    def __call__(self, k):
        """The tolerance at iteration ``k``: a Python float for a Python ``k``; for a
        traced ``k`` (JAX) a traced scalar (a ``schedule`` must then accept a traced k)."""
        if self.schedule is not None:
            t = self.schedule(k)
            return float(t) if isinstance(k, int) else t
        if isinstance(k, int):
            return max(self.tol0 * max(k, 1) ** -self.power, self.tol_min)
        xp = namespace(k)
        return xp.maximum(self.tol0 * (xp.maximum(k, 1) * 1.0) ** -self.power, self.tol_min)

    def _key(self):
        return (self.tol0, self.power, self.tol_min, self.schedule)

    # compared by value: a static field of compiled solvers, equal across solves
    def __eq__(self, other):
        return isinstance(other, ToleranceSchedule) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


class Diagnostics:
    """``record``/``info`` for solvers whose ``step`` returns device diagnostics:
    they wait in ``_pending`` until ``info`` is read, then ``_read(aux)`` files
    each into ``_info``. Copies made by ``copy.copy`` share both."""

    def _init_diagnostics(self, info: dict):
        self._info = info
        self._pending = []

    def record(self, aux) -> None:
        if aux is not None:
            self._pending.append(aux)

    def _read(self, aux) -> None:
        raise NotImplementedError

    @property
    def info(self) -> dict:
        """Diagnostics; reading them copies the pending ones to the host."""
        if self._pending:
            for aux in self._pending:
                self._read(aux)
            self._pending.clear()
        return self._info

    def solve(self, b, u0=None, k: int = 1):
        u, aux = self.step(b, u0, k)
        self.record(aux)
        return u


def record(info: dict, key: str, value) -> None:
    """Append ``value`` to the list ``info[key]``."""
    info.setdefault(key, []).append(value)
