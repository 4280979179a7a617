"""Saving and loading solve results and fitted estimators, without pickle.

A file is one ``.npz`` archive: plain numeric (or fixed-width string) arrays plus
one JSON document stored as a string array under ``__meta__``. It is read with
``np.load(allow_pickle=False)``, so loading a file never runs code from it; the
only classes it can produce are the few listed in ``_KINDS``, built through
their ordinary constructors.

Integrity: the metadata carry a SHA-256 checksum of the metadata and of every
array (name, dtype, shape and bytes). A file whose checksum does not match, that
holds an object array, or that names an unknown kind is refused.

Version policy: files record the admmnn version that wrote them and a format
number. A file from a newer admmnn major.minor release, or with a newer format
number, is refused with an error that says to upgrade; files from the same or
an older release load.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile

import numpy as np

from ._backend import asarray, backend_of, dtype_name, to_numpy
from ._version import __version__

FORMAT = "admmnn"
FORMAT_VERSION = 1
META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A file that admmnn refuses to read: foreign, tampered, too new or not ours."""


# -- the container: npz + JSON, atomic ----------------------------------------------


def _checksum(arrays: dict, meta: dict) -> str:
    h = hashlib.sha256()
    body = {key: val for key, val in meta.items() if key != "checksum"}
    h.update(json.dumps(body, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


def write_npz(path, arrays: dict, meta: dict) -> None:
    """Write ``arrays`` and ``meta`` to ``path`` atomically.

    The archive goes to a temporary file in the same folder, is flushed to disk,
    and then replaces ``path`` with ``os.replace``: a reader (or a crash) sees the
    old file or the new one, never half of one.
    """
    path = os.fspath(path)
    arrays = {name: np.asarray(to_numpy(a)) for name, a in arrays.items()}
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"{name!r} is an object array; it cannot be saved without pickle")
    meta = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, admmnn_version=__version__)
    meta["checksum"] = _checksum(arrays, meta)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays, **{META_KEY: np.asarray(json.dumps(meta))})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _release(version: str) -> tuple:
    m = re.match(r"(\d+)\.(\d+)", str(version))
    return (int(m.group(1)), int(m.group(2))) if m else (math.inf, math.inf)


def read_npz(path, kinds=None) -> tuple[dict, dict]:
    """Read and verify a file written by ``write_npz``: (arrays, meta).

    Raises ``ModelFileError`` for anything but an intact admmnn file of one of
    ``kinds`` written by this or an older admmnn release.
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise ModelFileError(f"{path!r} is not an admmnn file (not a readable .npz archive: {exc})") from None
    if not hasattr(archive, "files"):
        raise ModelFileError(f"{path!r} is not an admmnn file (a bare .npy array, not an .npz archive)")
    with archive:
        if META_KEY not in archive.files:
            raise ModelFileError(f"{path!r} is not an admmnn file (no {META_KEY!r} entry)")
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError as exc:
                raise ModelFileError(
                    f"{path!r}: entry {name!r} cannot be read without pickle ({exc}); admmnn files never need "
                    "pickle, so this file was not written by admmnn or was tampered with"
                ) from None
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the metadata are not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not an admmnn file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    written_by = str(meta.get("admmnn_version"))
    if _release(written_by) > _release(__version__) or not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by admmnn {written_by} (file format {meta.get('format_version')}), newer than this "
            f"admmnn {__version__} (format {FORMAT_VERSION}); upgrade admmnn to read it"
        )
    if meta.get("checksum") != _checksum(arrays, meta):
        raise ModelFileError(
            f"{path!r}: checksum mismatch; the metadata or arrays were modified after the file was written, "
            "so it is refused"
        )
    if kinds is not None and meta.get("kind") not in kinds:
        raise ModelFileError(f"{path!r} holds a {meta.get('kind')!r}, expected one of {list(kinds)}")
    return arrays, meta


# -- JSON-safe values ---------------------------------------------------------------


def _plain(value, name: str):
    """``value`` as JSON (numbers, strings, bools, None, lists, dicts), or TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{name} = {value!r} cannot be saved (only numbers, strings, lists and dicts can, without pickle)")


def _loose(d: dict) -> dict:
    """The JSON-safe entries of a diagnostics dict (others as their repr)."""
    out = {}
    for key, val in d.items():
        try:
            out[str(key)] = _plain(val, str(key))
        except TypeError:
            out[str(key)] = repr(val)
    return out


def _labels_array(classes) -> np.ndarray:
    a = np.asarray(classes)
    if a.dtype.hasobject:
        plain = np.asarray(a.tolist())
        if plain.dtype.hasobject or plain.shape != a.shape or plain.tolist() != a.tolist():
            raise TypeError("classes_ holds labels of mixed or object types; they cannot be saved without pickle")
        a = plain
    return a


# -- SolveResult ----------------------------------------------------------------------


def _result_parts(res, prefix: str = "") -> tuple[dict, dict]:
    from .admm import ADMMState

    net = res.network
    arrays = {f"{prefix}v": res.v, f"{prefix}network/W1": net.W1, f"{prefix}network/W2": net.W2}
    if net.b1 is not None:
        arrays[f"{prefix}network/b1"] = net.b1
    if res.state is not None:
        for field in ADMMState._fields:
            arrays[f"{prefix}state/{field}"] = getattr(res.state, field)
    for key, val in res.history.items():
        arrays[f"{prefix}history/{key}"] = np.asarray(val)
    meta = {
        "objective": float(res.objective),
        "dual_bound": float(res.dual_bound),
        "status": res.status,
        "n_iter": int(res.n_iter),
        "rho": float(res.rho),
        "solver": res.solver,
        "timings": _loose(res.timings),
        "info": _loose(res.info),
        "backend": backend_of(res.v),
        "dtype": dtype_name(res.v),
    }
    return arrays, meta


def _result_from(arrays: dict, meta: dict, backend: str, device, prefix: str = ""):
    from .admm import ADMMState
    from .network import ReLUNetwork
    from .result import STATUSES, SolveResult

    def get(name):
        a = arrays.get(prefix + name)
        return None if a is None else asarray(a, backend, a.dtype.name, device)

    if meta.get("status") not in STATUSES:
        raise ModelFileError(f"unknown solve status {meta.get('status')!r}")
    state = None
    if all(prefix + f"state/{f}" in arrays for f in ADMMState._fields):
        state = ADMMState(*(get(f"state/{f}") for f in ADMMState._fields))
    hist = prefix + "history/"
    return SolveResult(
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


# -- estimators -------------------------------------------------------------------------


def _estimator_classes() -> dict:
    from .estimators import ConvexReLUClassifier, ConvexReLURegressor

    return {cls.__name__: cls for cls in (ConvexReLUClassifier, ConvexReLURegressor)}


_FITTED = ("n_features_in_", "n_iter_", "_y_1d", "backend_", "dtype_")


def _estimator_parts(est) -> tuple[dict, dict]:
    if not hasattr(est, "network_"):
        from .validation import NotFittedError

        raise NotFittedError(f"this {type(est).__name__} is not fitted yet; only fitted estimators can be saved")
    params = {}
    for key, val in est.get_params(deep=False).items():
        if key == "device" and val is not None and not isinstance(val, str):
            val = str(val)
        params[key] = _plain(val, key)
    arrays, meta = _result_parts(est.result_, prefix="result/")
    meta = {"result": meta}
    net = est.network_
    arrays.update({"network/W1": net.W1, "network/W2": net.W2, "patterns": est.patterns_})
    if net.b1 is not None:
        arrays["network/b1"] = net.b1
    if hasattr(est, "classes_"):
        arrays["classes"] = _labels_array(est.classes_)
    meta["params"] = params
    meta["fitted"] = {key: _plain(getattr(est, key), key) for key in _FITTED if hasattr(est, key)}
    return arrays, meta


def _estimator_from(cls, arrays: dict, meta: dict, backend, device):
    from .network import ReLUNetwork

    params = dict(meta["params"])
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ModelFileError(f"the file sets parameters {sorted(unknown)} that {cls.__name__} does not have")
    if backend is not None:
        params["backend"], params["device"] = backend, device
    est = cls(**params)
    est._check_params()
    for key, val in meta.get("fitted", {}).items():
        if key in _FITTED:
            setattr(est, key, val)
    if backend is not None:
        est.backend_ = backend
    b, dev, dt = est.backend_, est.device, est.dtype_
    if "classes" in arrays:
        est.classes_ = arrays["classes"]
    est.patterns_ = np.asarray(arrays["patterns"])
    b1 = arrays.get("network/b1")
    est.network_ = ReLUNetwork(
        asarray(arrays["network/W1"], b, dt, dev), asarray(arrays["network/W2"], b, dt, dev),
        None if b1 is None else asarray(b1, b, dt, dev),
    )
    est.result_ = _result_from(arrays, meta["result"], b, dev, prefix="result/")
    return est


# -- public -----------------------------------------------------------------------------


def save(obj, path) -> None:
    """Save a ``SolveResult`` or a fitted estimator to ``path`` (an .npz file, no pickle)."""
    from .result import SolveResult

    if isinstance(obj, SolveResult):
        arrays, meta = _result_parts(obj)
        meta["kind"] = "SolveResult"
    elif type(obj).__name__ in _estimator_classes() and isinstance(obj, _estimator_classes()[type(obj).__name__]):
        arrays, meta = _estimator_parts(obj)
        meta["kind"] = type(obj).__name__
    else:
        raise TypeError(f"save expects a SolveResult or a fitted admmnn estimator, got {type(obj).__name__}")
    write_npz(path, arrays, meta)


def load(path, backend: str | None = None, device=None, kinds=None):
    """Load what ``save`` wrote: a ``SolveResult`` or a fitted estimator.

    backend : "numpy", "torch" or "jax" for the loaded arrays (default: the
        backend they were saved from); device : where to put them.
    kinds : restrict what may be loaded (class names); anything else is refused.
    """
    from .validation import check_backend

    if backend is not None:
        check_backend(backend)
    classes = _estimator_classes()
    allowed = ["SolveResult", *classes] if kinds is None else list(kinds)
    arrays, meta = read_npz(path, allowed)
    try:
        if meta["kind"] == "SolveResult":
            return _result_from(arrays, meta, backend or meta.get("backend", "numpy"), device)
        return _estimator_from(classes[meta["kind"]], arrays, meta, backend, device)
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{os.fspath(path)!r}: incomplete or malformed admmnn file ({type(exc).__name__}: {exc})") from None
