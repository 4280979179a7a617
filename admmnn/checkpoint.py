"""Checkpoints of a running solve, and resuming from them.

``solve(..., checkpoint=path, checkpoint_every=k)`` writes, at the first check
at or after every ``k`` iterations and once more when the solve ends (whatever
its status, Ctrl-C included), everything the ADMM loop carries:

* the point the next iteration starts from (the full ``ADMMState``, after any
  penalty change made there) and the Anderson accelerator's memory, rho and the
  iteration count,
* the last good (checked, finite) iterate with its metrics, which the result
  reports,
* the divergence monitor, the history so far and the phase timings.

``solve(..., resume=path)`` continues from such a file. Since the next iterate
depends on nothing else, a resumed float64 NumPy run produces bit-identical
iterates to a run that was never stopped (with one exception: a run that ended
at ``max_iter`` between two regular checks was checked there, which the longer
run was not; its rho may therefore differ).

A checkpoint belongs to one problem: SHA-256 hashes of X, Y and D (as the loop
sees them: in X's floating dtype) and the options that change the iterates
(beta, gamma, the resolved solver and its options, check_every, adapt_rho) are
stored, and a file from another problem is refused, naming what differs.
Files are written atomically (a temporary file, then ``os.replace``) with the
npz + JSON container of ``admmnn.io`` (no pickle).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import NamedTuple

import numpy as np

from ._backend import dtype_name, like, to_numpy
from .admm import ADMMState
from .anderson import AndersonState
from .driver import Checked, Point
from .io import ModelFileError, json_value, malformed, read_npz, write_npz
from .validation import check_positive


class CheckpointMismatchError(ModelFileError):
    """A checkpoint written for another problem (data or options)."""


def _digest(a) -> str:
    a = np.ascontiguousarray(to_numpy(a))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


def fingerprint(X, Y, D, **options) -> dict:
    """What identifies a problem: hashes of X, Y, D and the iterate-shaping options."""
    opts = {}
    for key, val in sorted(options.items()):
        try:
            opts[key] = json_value(val, key)
        except TypeError:
            opts[key] = repr(val)
    return {"X": _digest(X), "Y": _digest(Y), "D": _digest(D), "dtype": dtype_name(X), "options": opts}


def check_args(checkpoint, checkpoint_every, resume, warm_start):
    """Validate the checkpoint arguments of ``solve``."""
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(value).__name__}")
    check_positive("checkpoint_every", checkpoint_every, integer=True)
    if resume is not None and warm_start is not None:
        raise ValueError("pass either resume= (a checkpoint file) or warm_start= (a result), not both")
    if checkpoint is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
        if not os.path.isdir(folder):
            raise ValueError(f"checkpoint: the folder {folder!r} does not exist")


class Position(NamedTuple):
    """Where the loop stands: the point the next iteration starts from, with the
    penalty, iteration count and cone weight it was built with."""

    point: Point
    rho: float
    k: int
    cone_scale: float


class Saved(NamedTuple):
    """A checkpoint read back: what the loop needs to go on."""

    state: ADMMState
    accel: AndersonState | None
    rho: float
    cone_scale: float
    k: int
    good: Checked
    monitor: dict
    history: dict  # key -> list
    timings: dict
    schedule: dict  # when the penalty last changed, the next endgame try, the best bound
    polished: Checked | None = None  # the endgame's best point


def trim_history(history: dict, k_max: int | None = None) -> dict:
    """History lists cut to equal length (a check interrupted half way leaves
    some longer) and, with ``k_max``, to the checks at iterations <= k_max."""
    n = min((len(v) for v in history.values()), default=0)
    if k_max is not None and "iteration" in history:
        n = min(n, int(np.searchsorted(np.asarray(history["iteration"][:n]), k_max, side="right")))
    return {key: list(val[:n]) for key, val in history.items()}


class Checkpointer:
    """Writes checkpoints of one solve to ``path`` every ``every`` iterations."""

    def __init__(self, path, every: int, fp: dict, start_k: int = 0):
        self.path = os.fspath(path)
        self.every = int(every)
        self.fp = fp
        self.last_k = start_k

    def due(self, k: int) -> bool:
        return k - self.last_k >= self.every

    def write(self, pos: Position, good: Checked, history, monitor, timings, schedule=None,
              polished: Checked | None = None) -> None:
        """Write ``pos`` (where the loop stands) and ``good`` (the last checked iterate)."""
        pt, rho, k, cone_scale = pos
        st = pt.x
        gst = good.state
        arrays = {f"state/{f}": getattr(st, f) for f in ADMMState._fields}
        if pt.accel is not None:
            arrays.update(_accel_arrays(pt.accel))
        # the good iterate usually shares u, v, s, Gu with ``st``: store only what differs
        arrays.update({f"good/{f}": getattr(gst, f) for f in ADMMState._fields if getattr(gst, f) is not getattr(st, f)})
        if polished is not None:
            arrays.update({f"polished/{f}": getattr(polished.state, f) for f in ADMMState._fields})
        hist = trim_history(history, k)
        arrays.update({f"history/{key}": np.asarray(val, dtype=float) for key, val in hist.items()})
        meta = {
            "kind": "checkpoint",
            "k": int(k),
            "rho": float(rho),
            "cone_scale": float(cone_scale),
            "good": _checked_meta(good),
            "monitor": monitor.to_dict(),
            "timings": {key: float(v) for key, v in timings.items()},
            "schedule": {key: (int(v) if isinstance(v, int) else float(v)) for key, v in (schedule or {}).items()},
            "fingerprint": self.fp,
            **({"polished": _checked_meta(polished)} if polished is not None else {}),
        }
        try:
            write_npz(self.path, arrays, meta)
        except OSError as exc:  # a full disk should not end a long solve: warn and go on
            warnings.warn(f"could not write checkpoint {self.path!r} at iteration {k}: {exc}; the solve goes on",
                          RuntimeWarning, stacklevel=3)
        self.last_k = k


def load(path, fp: dict, ref) -> Saved:
    """Read a checkpoint for the problem ``fp`` (see ``fingerprint``); arrays come
    back in the library, dtype and device of ``ref``."""
    arrays, meta = read_npz(path, ["checkpoint"])
    with malformed(path):
        return _saved(os.fspath(path), arrays, meta, fp, ref)


def _saved(path: str, arrays: dict, meta: dict, fp: dict, ref) -> Saved:
    saved = meta["fingerprint"]
    differ = [key for key in ("X", "Y", "D", "dtype") if saved.get(key) != fp[key]]
    opts_a, opts_b = saved.get("options", {}), fp["options"]
    differ += [
        f"{key} (checkpoint {opts_a.get(key)!r}, now {opts_b.get(key)!r})"
        for key in sorted(set(opts_a) | set(opts_b))
        if opts_a.get(key) != opts_b.get(key)
    ]
    if differ:
        raise CheckpointMismatchError(
            f"checkpoint {path!r} was written for a different problem; these differ: {', '.join(differ)}. "
            "Resume only with the same X, Y, D and options, or start afresh without resume="
        )
    st = ADMMState(*(like(arrays[f"state/{f}"], ref) for f in ADMMState._fields))
    accel = _accel_from(arrays, ref)
    gst = ADMMState(*(like(arrays[f"good/{f}"], ref) if f"good/{f}" in arrays else getattr(st, f) for f in ADMMState._fields))
    g = meta["good"]
    polished = None
    if "polished" in meta:
        pm = meta["polished"]
        pst = ADMMState(*(like(arrays[f"polished/{f}"], ref) for f in ADMMState._fields))
        polished = Checked(pst, dict(pm["metrics"]), int(pm["k"]), float(pm["rho"]), float(pm["cone_scale"]))
    history = {k[len("history/"):]: [float(x) for x in v] for k, v in arrays.items() if k.startswith("history/")}
    if "iteration" in history:
        history["iteration"] = [int(x) for x in history["iteration"]]
    return Saved(st, accel, float(meta["rho"]), float(meta["cone_scale"]), int(meta["k"]),
                 Checked(gst, dict(g["metrics"]), int(g["k"]), float(g["rho"]), float(g["cone_scale"])),
                 meta["monitor"], history, meta["timings"], dict(meta.get("schedule", {})), polished)


def _checked_meta(c: Checked) -> dict:
    return {"k": int(c.k), "rho": float(c.rho), "cone_scale": float(c.cone_scale),
            "metrics": {key: float(v) for key, v in c.metrics.items()}}


def _accel_arrays(aa: AndersonState) -> dict:
    return {f"accel/{name}": val for name, val in aa._asdict().items()}


def _accel_from(arrays: dict, ref) -> AndersonState | None:
    if "accel/count" not in arrays:
        return None
    if "accel/head" not in arrays:  # written before the memory became a ring: valid rows last, no Gram
        return _accel_from_stack(arrays, ref)
    return AndersonState(**{name: like(arrays[f"accel/{name}"], ref) for name in AndersonState._fields})


def _accel_from_stack(arrays: dict, ref) -> AndersonState:
    """An accelerator memory of an earlier release, whose m rows of differences kept the
    ``count - 1`` valid ones last, as a ring whose valid rows come first."""
    dF, dG = np.asarray(arrays["accel/dF"]), np.asarray(arrays["accel/dG"])
    m = dG.shape[0]
    valid = int(min(max(float(arrays["accel/count"]) - 1, 0), m))
    dF, dG = np.roll(dF, valid - m, axis=0), np.roll(dG, valid - m, axis=0)
    fields = {name: arrays[f"accel/{name}"] for name in AndersonState._fields if f"accel/{name}" in arrays}
    fields.update(dF=dF, dG=dG, head=np.asarray(float(valid % m), dtype=dG.dtype), gram=dG @ dG.T)
    return AndersonState(**{name: like(val, ref) for name, val in fields.items()})
