"""The solve loop: what happens at each check, with its policies as small named objects.

``Loop.on_check`` is the loop body that ``Driver.run`` calls every ``check_every``
iterations; it reads like OSQP's loop::

    certify -> diverged? -> keep the best point -> converged? -> endgame due? ->
    time up? -> cone penalty rule -> checkpoint

Each decision is one object with one method: ``StopRule.converged``,
``ConePenaltyRule.due``, ``EndgameSchedule.due``; the history is ``History.record``.
What the loop carries between checks is the ``LoopState`` named tuple.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import admm, anderson, certificate
from . import checkpoint as _ckpt
from . import endgame as _endgame
from ._backend import to_float
from .divergence import DivergenceMonitor, warn_diverged, warn_interrupted
from .driver import Checked
from .result import Status

#: phases timed by ``solve``; ``history["seconds_<phase>"]`` holds their cumulative seconds at each check
PHASES = ("precompute", "u", "v", "s", "dual", "accel", "check", "endgame", "iterations")


def rel_gap(objective: float, bound: float) -> float:
    """``(objective - bound) / |objective|``."""
    return (objective - bound) / max(abs(objective), np.finfo(float).tiny)


def merit(m: dict, bound: float) -> float:
    """``certificate.merit`` of a checked point (metrics ``m``) against ``bound``."""
    return certificate.merit(m["objective"], bound, m["cone_violation"])


@dataclass(frozen=True)
class StopRule:
    """When the solve is done: "gap" (``-ROUNDING <= rel gap <= tol`` against the best bound
    of the run, and cone violation <= tol), "residuals" (Boyd et al. 3.3) or "both"."""

    tol: float
    stop: str = "gap"

    def certified(self, m: dict, bound: float) -> bool:
        return certificate.certifies(m["objective"], bound, m["cone_violation"], self.tol)

    def converged(self, m: dict, best: dict, bound: float) -> bool:
        gap_ok = self.certified(best, bound)
        res_ok = m["r_pri"] <= m["eps_pri"] and m["r_dual"] <= m["eps_dual"]
        return {"gap": gap_ok, "residuals": res_ok, "both": gap_ok and res_ok}[self.stop]


@dataclass(frozen=True)
class ConePenaltyRule:
    """Multiply the cone penalty by ``step`` when the cone violation, above ``tol``, is at
    least a quarter of the relative gap (or the gap is negative), at most every ``every``
    iterations."""

    tol: float
    every: int = 100
    step: float = 5.0
    on: bool = True

    def due(self, k: int, last_change: int, m: dict) -> bool:
        if not self.on or k - last_change < self.every:
            return False
        viol, gap = m["cone_violation"], m["rel_gap"]
        return viol > self.tol and (gap < 0 or viol >= 0.25 * gap)


@dataclass(frozen=True)
class EndgameSchedule:
    """When to run the semismooth Newton endgame (``admmnn.endgame``): first at iteration
    ``start``, then, after a try that did not certify, at ``again`` times the iteration of
    the last try (``backoff`` times when the try did not improve the best point at all).
    Each try gets ``newton_steps`` Newton steps."""

    on: bool
    start: int = 100
    again: int = 2
    backoff: int = 4
    newton_steps: int = 250
    memory: float = float("inf")  # bytes the Newton system may use (``endgame.choose``)

    def due(self, k: int, next_k: int) -> bool:
        return self.on and k >= next_k

    def next_after(self, k: int, improved: bool) -> int:
        return (self.again if improved else self.backoff) * k


class History:
    """Per-check lists (``SolveResult.history``): the metrics, the iteration, the penalties,
    the seconds since the start and the cumulative seconds of each phase."""

    def __init__(self, saved: dict | None, t_start: float, timer):
        self.lists = defaultdict(list)
        if saved:
            self.lists.update(saved)
            # a checkpoint of an earlier release: fill what it did not record
            if "best_bound" not in saved and "dual_bound" in saved:
                self.lists["best_bound"] = list(np.maximum.accumulate(saved["dual_bound"]))
            for phase in PHASES:
                self.lists.setdefault(f"seconds_{phase}", [0.0] * len(saved.get("iteration", [])))
        self.t_offset = self.lists["time"][-1] if self.lists.get("time") else 0.0
        self.t_start, self.timer = t_start, timer

    def record(self, m: dict, k: int, rho: float, cone_scale: float, bound: float) -> None:
        h = self.lists
        for key, val in m.items():
            h[key].append(val)
        h["iteration"].append(k)
        h["best_bound"].append(bound)
        h["rho"].append(rho)
        h["rho_ratio"].append(cone_scale**2)
        h["time"].append(self.t_offset + time.perf_counter() - self.t_start)
        for phase in PHASES:
            h[f"seconds_{phase}"].append(self.timer.seconds.get(phase, 0.0))

    def arrays(self) -> dict:
        return {key: np.asarray(val) for key, val in _ckpt.trim_history(self.lists).items()}


class LoopState(NamedTuple):
    """What the loop carries between checks.

    good: the last checked, finite ADMM iterate (``Checked``); polished: the endgame's best
    point (``Checked``, or None); bound: the best dual bound of the run; point: where the next
    iteration starts (``checkpoint.Position``);
    last_change: iteration of the last cone penalty change; next_endgame: iteration of the
    next endgame try; tries: one dict per endgame try."""

    good: Checked | None
    polished: Checked | None
    bound: float
    point: object
    last_change: int = 0
    next_endgame: int = 0
    tries: tuple = ()

    def schedule(self) -> dict:
        """What a checkpoint stores of the schedule."""
        return {"last_change": self.last_change, "next_endgame": self.next_endgame, "bound": self.bound}

    def best(self) -> Checked:
        """The point to report: the endgame's when it is closer to certified than ADMM's last."""
        p, g = self.polished, self.good
        return p if p is not None and merit(p.metrics, self.bound) < merit(g.metrics, self.bound) else g


class Loop:
    """The loop body of one solve: ``on_check`` (see the module docstring) and its named steps."""

    def __init__(self, driver, history: History, monitor, stop: StopRule, cone_rule: ConePenaltyRule,
                 schedule: EndgameSchedule, state: LoopState, *, deadline=None, writer=None, callback=None,
                 bar=None, max_iter: int = 1, check_every: int = 1):
        self.driver, self.history, self.monitor = driver, history, monitor
        self.stop, self.cone_rule, self.schedule = stop, cone_rule, schedule
        self.state, self.deadline, self.writer, self.callback, self.bar = state, deadline, writer, callback, bar
        self.max_iter, self.check_every = int(max_iter), int(check_every)
        self.system = None  # the endgame's Newton system, built at its first try

    @classmethod
    def start(cls, driver, cfg, pt, saved, t_start: float, *, writer=None, callback=None, schedule=None,
              bar_desc: str = "admm"):
        """The loop of one solve with settings ``cfg`` (``settings.Settings``), from the point
        ``pt``, or from the checkpoint ``saved`` (``checkpoint.Saved``)."""
        history = History(saved.history if saved else None, t_start, driver.timer)
        k0 = saved.k if saved else 0
        position = _ckpt.Position(pt, driver.rho, k0, driver.op.cone_scale)
        monitor = None
        if saved is not None:
            sch = dict(saved.schedule)
            state = LoopState(saved.good, saved.polished, float(sch.get("bound", saved.good.metrics["dual_bound"])),
                              position, int(sch.get("last_change", 0)), int(sch.get("next_endgame", schedule.start)))
            monitor = DivergenceMonitor.from_dict(saved.monitor)
        else:
            state = LoopState(None, None, -math.inf, position, 0, schedule.start)
        bar = None
        if cfg.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.max_iter, desc=bar_desc, unit="it")
        deadline = None if cfg.max_time is None else t_start + cfg.max_time
        return cls(driver, history, monitor, StopRule(cfg.tol, cfg.stop), ConePenaltyRule(cfg.tol, on=cfg.adapt_rho),
                   schedule, state, deadline=deadline, writer=writer, callback=callback, bar=bar,
                   max_iter=cfg.max_iter, check_every=cfg.check_every)

    def run(self, pt, k0: int):
        """Iterate from ``pt`` (after ``k0`` iterations) to a status; Ctrl-C ends with
        "interrupted" once a first point was checked. The last position is checkpointed."""
        d = self.driver
        status = None
        s = self.state
        if s.good is not None and self.stop.converged(s.good.metrics, s.best().metrics, s.bound):
            return Status.OPTIMAL  # resumed from the checkpoint of a finished solve
        try:
            if self.state.good is None:  # check the starting point: the first good point and the monitor's scale
                m0 = self.certify(pt.x, pt.x, 0)
                self.monitor = DivergenceMonitor(m0["objective"], 0.5 * to_float(d.xp.sum(d.Y * d.Y)))
                self.state = self.state._replace(good=Checked(pt.x, m0, 0, d.rho, d.op.cone_scale))
            status, _, _ = d.run(pt, k0, self.max_iter, self.check_every, self.on_check, self.deadline)
        except KeyboardInterrupt:
            if self.state.good is None:  # stopped before the first certificate: nothing to return
                raise
            status = Status.INTERRUPTED
            warn_interrupted(self.state.good.k, self.state.good.metrics)
        finally:
            if self.bar is not None:
                self.bar.close()
        self.checkpoint(self.state.point.k, force=True)
        return status

    def on_check(self, k, fx, x, pt):
        """The check at iteration k of ``fx = T(x)``; returns ``(status or None, next point)``."""
        m = self.certify(fx, x, k)
        if self.diverged(m, k):
            return Status.DIVERGED, pt
        self.state = self.state._replace(good=Checked(fx, m, k, self.driver.rho, self.driver.op.cone_scale))
        if self.callback is not None:
            self.callback(k, m, fx)
        status, s = None, self.state
        if self.stop.converged(m, s.best().metrics, s.bound):
            status = Status.OPTIMAL
        elif self.stop.stop != "residuals" and self.schedule.due(k, s.next_endgame) and self.endgame(fx, m, k):
            status = Status.OPTIMAL
        elif self.deadline is not None and time.perf_counter() > self.deadline:
            status = Status.TIME_LIMIT
        elif self.cone_rule.due(k, s.last_change, m):
            pt = self.driver.change_rho(pt, 1.0, self.cone_rule.step)
            self.state = self.state._replace(last_change=k)
        # the accelerator's memory is updated in place (NumPy, torch): a checkpoint written after
        # later iterations (Ctrl-C) must hold this check's copy
        kept = pt if self.writer is None else pt._replace(accel=anderson.copy(self.driver.xp, pt.accel))
        self.state = self.state._replace(point=_ckpt.Position(kept, self.driver.rho, k, self.driver.op.cone_scale))
        if status is None:
            self.checkpoint(k)
        return status, pt

    def certify(self, fx, x, k) -> dict:
        t = time.perf_counter()
        m = self.driver.check(fx, x)
        bound = max(self.state.bound, m["dual_bound"])
        self.state = self.state._replace(bound=bound)
        self.history.record(m, k, self.driver.rho, self.driver.op.cone_scale, bound)
        self.driver.timer("check", t)
        if self.bar is not None:
            self.bar.update(k - self.bar.n)
            self.bar.set_postfix(obj=f"{m['objective']:.5g}", gap=f"{rel_gap(m['objective'], bound):.1e}",
                                 rho=f"{self.driver.rho:.2g}")
        return m

    def diverged(self, m: dict, k: int) -> bool:
        reason = self.monitor.update(m, self.driver.rho)
        if reason is None:
            return False
        good = self.state.good
        warn_diverged(reason, k, good.k, good.metrics, good.rho)
        return True

    def endgame(self, fx, m: dict, k: int) -> bool:
        """Run the endgame from ``fx``; keep what it finds if it beats the best point.
        Returns whether the best point is now certified."""
        t = time.perf_counter()
        d = self.driver
        before = merit(self.state.best().metrics, self.state.bound)
        if self.system is None:
            self.system = _endgame.system_for(d.cert_op, d.cert_Y.shape[1], self.schedule.memory)
        start = _endgame.start_state(d.cert_op, d.cast_state(fx), d.rho)
        def log(best, bound, newton):  # one history row per outer step (float64 point, best bound so far)
            bound = max(self.state.bound, bound)
            self.history.record(dict(m, objective=best.objective, cone_violation=best.cone_violation,
                                     dual_bound=bound, gap=best.objective - bound,
                                     rel_gap=rel_gap(best.objective, bound)),
                                k, d.rho, d.op.cone_scale, bound)

        er = _endgame.run(d.cert_op, d.cert_Y, d.beta, start, self.stop.tol, max_newton=self.schedule.newton_steps,
                          deadline=self.deadline, system=self.system, log=log)
        d.timer("endgame", t)
        self.state = self.state._replace(bound=max(self.state.bound, er.dual_bound))
        if er.best is not None:
            u = d.from_float64(er.best.u)
            obj, viol = (to_float(a) for a in certificate.objective(d.cert_op, d.cast_array(u), d.cert_Y, d.beta))
            gap = obj - self.state.bound
            me = dict(m, objective=obj, cone_violation=viol, dual_bound=er.dual_bound, gap=gap,
                      rel_gap=rel_gap(obj, self.state.bound))
            self.history.record(me, k, d.rho, d.op.cone_scale, self.state.bound)
            c = Checked(d.endgame_state(u, er.state), me, k, d.rho, d.op.cone_scale)
            if self.state.polished is None or merit(me, self.state.bound) < merit(self.state.polished.metrics,
                                                                                  self.state.bound):
                self.state = self.state._replace(polished=c)
        after = merit(self.state.best().metrics, self.state.bound)
        self.state = self.state._replace(
            next_endgame=self.schedule.next_after(k, after < before),
            tries=self.state.tries + ({"iteration": k, "newton_steps": er.newton_steps, "outer_steps": er.outer_steps,
                                       "seconds": time.perf_counter() - t, "reason": er.reason,
                                       "rel_gap": rel_gap(self.state.best().metrics["objective"], self.state.bound)},))
        return self.stop.certified(self.state.best().metrics, self.state.bound)

    def checkpoint(self, k: int, force: bool = False) -> None:
        w = self.writer
        if w is not None and (w.due(k) if not force else w.last_k != self.state.point.k):
            w.write(self.state.point, self.state.good, self.history.lists, self.monitor, self.driver.timer.seconds,
                    self.state.schedule(), self.state.polished)

    def result_state(self):
        """The best point's state in unweighted units, and the bound to report with it (the
        best bound, or the objective where it lies below that bound only by rounding)."""
        best = self.state.best()
        st = admm.rescale_cone(best.state, 1.0 / best.cone_scale)
        bound = min(self.state.bound, best.metrics["objective"]) if self.stop.certified(best.metrics, self.state.bound) \
            else self.state.bound
        return best, st, bound


__all__ = ["Loop", "LoopState", "History", "StopRule", "ConePenaltyRule", "EndgameSchedule", "PHASES", "merit",
           "rel_gap"]
