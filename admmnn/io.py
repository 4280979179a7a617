"""The file container of admmnn: named arrays plus JSON metadata, without pickle.

A file is one ``.npz`` archive: plain numeric (or fixed-width string) arrays plus
one JSON document stored as a string array under ``__meta__``. It is read with
``np.load(allow_pickle=False)``, so loading a file never runs code from it. This
module knows no admmnn type: ``SolveResult`` (``result.py``), the estimators
(``estimators.py``) and checkpoints (``checkpoint.py``) turn themselves into
arrays and metadata and back; ``save``/``load`` dispatch on the ``kind`` recorded
in the metadata to the readers they ``register``, built through their ordinary
constructors.

Integrity: the metadata carry a SHA-256 checksum of the metadata and of every
array (name, dtype, shape and bytes). A file whose checksum does not match, that
holds an object array, or that names an unknown kind is refused. So is a
damaged one (truncated, a bad CRC, a garbled header): every read error becomes a
``ModelFileError`` (a ``ValueError``) naming the file and the cause, never
zipfile's or NumPy's own exception; a missing file still raises FileNotFoundError.

Version policy: files record the admmnn version that wrote them and a format
number. A file from a newer admmnn major.minor release, or with a newer format
number, is refused with an error that says to upgrade; files from the same or
an older release load.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile

import numpy as np

from ._backend import to_numpy
from ._version import __version__
from .validation import check_backend

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
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **arrays, **{META_KEY: np.asarray(json.dumps(meta))})


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb"):
    """A file opened on a temporary name in ``path``'s folder that, flushed to disk,
    replaces ``path`` (``os.replace``) when the block ends without an exception; after
    one, the temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
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


def _damaged(path: str, exc: BaseException) -> ModelFileError:
    return ModelFileError(
        f"{path!r} is damaged (a corrupted or truncated archive; {type(exc).__name__}: {exc}); "
        "write it again or use a copy"
    )


def _unopened(path: str, exc: BaseException) -> ModelFileError:
    """The error for a file ``np.load`` cannot open: damaged if it starts like a
    zip archive (a truncated one has lost its directory, which stands at the end)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = None
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return _damaged(path, exc)
    if head == b"":
        return ModelFileError(f"{path!r} is empty (0 bytes): damaged, or not an admmnn file")
    return ModelFileError(f"{path!r} is not an admmnn file (not a readable .npz archive: {exc})")


def _read_entries(path: str) -> dict:
    """Every entry of the .npz archive ``path``, read and CRC-checked.

    Anything the reading can raise on a damaged archive (zipfile's BadZipFile,
    NotImplementedError for a garbled compression method, EOFError, OSError on a
    bad offset, ValueError or tokenize errors on a garbled .npy header, ...)
    becomes a ModelFileError naming ``path`` and the cause. A missing file, a
    folder or a file without read permission raise as usual, and so does a
    MemoryError (a real shortage, not a property of the file).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError, MemoryError):
        raise
    except Exception as exc:
        raise _unopened(path, exc) from None
    if not hasattr(archive, "files"):
        raise ModelFileError(f"{path!r} is not an admmnn file (a bare .npy array, not an .npz archive)")
    arrays = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except MemoryError:
                raise
            except ValueError as exc:
                if "allow_pickle" not in str(exc):  # a garbled .npy header or short data
                    raise _damaged(path, exc) from None
                raise ModelFileError(
                    f"{path!r}: entry {name!r} cannot be read without pickle ({exc}); admmnn files never need "
                    "pickle, so this file was not written by admmnn or was tampered with"
                ) from None
            except Exception as exc:
                raise _damaged(path, exc) from None
    return arrays


def _intact(arrays: dict, meta: dict) -> bool:
    """Whether the checksum in ``meta`` matches ``meta`` and ``arrays``."""
    try:
        return meta.get("checksum") == _checksum(arrays, meta)
    except (TypeError, ValueError):  # arrays no buffer can show (a foreign file)
        return False


def read_npz(path, kinds=None) -> tuple[dict, dict]:
    """Read and verify a file written by ``write_npz``: (arrays, meta).

    Raises ``ModelFileError`` naming ``path`` and the cause for anything but an
    intact admmnn file of one of ``kinds`` written by this or an older admmnn
    release: a damaged (truncated, corrupted) file included.
    """
    path = os.fspath(path)
    arrays = _read_entries(path)
    if META_KEY not in arrays:
        raise ModelFileError(f"{path!r} is not an admmnn file, or a damaged one (no {META_KEY!r} entry)")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the metadata are not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path!r} is not an admmnn file (its metadata are a {type(meta).__name__}, not a dict)")
    intact = _intact(arrays, meta)
    # a damaged file can seem foreign or newer: say so when it carries a checksum that does not match
    damaged = "" if intact or "checksum" not in meta else "; its checksum does not match either, so it may be damaged"
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not an admmnn file (format {meta.get('format')!r}){damaged}")
    written_by = str(meta.get("admmnn_version"))
    if _release(written_by) > _release(__version__) or not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by admmnn {written_by} (file format {meta.get('format_version')}), newer than this "
            f"admmnn {__version__} (format {FORMAT_VERSION}); upgrade admmnn to read it{damaged}"
        )
    if not intact:
        raise ModelFileError(
            f"{path!r}: checksum mismatch; the file is damaged, or its metadata or arrays were modified after "
            "it was written, so it is refused"
        )
    if kinds is not None and meta.get("kind") not in kinds:
        raise ModelFileError(f"{path!r} holds a {meta.get('kind')!r}, expected one of {list(kinds)}")
    return arrays, meta


# -- JSON-safe values ---------------------------------------------------------------


def json_value(value, name: str = "value", strict: bool = True):
    """``value`` as plain JSON: None, bools, ints, floats, strings, lists and dicts
    with string keys (tuples and NumPy arrays become lists, NumPy scalars numbers,
    ``str`` subclasses such as ``Status`` plain strings).

    Parameters
    ----------
    value : object
        What to convert.
    name : str
        The name that errors give it.
    strict : bool
        Raise ``TypeError`` naming ``name`` for anything else (what a file must
        reproduce exactly); otherwise such a value becomes its ``str`` and a
        non-finite float becomes None (diagnostics and result logs).
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if strict or math.isfinite(value) else None
    if isinstance(value, (list, tuple)) or (not strict and isinstance(value, np.ndarray)):
        return [json_value(v, name, strict) for v in value]
    if isinstance(value, dict) and (not strict or all(isinstance(k, str) for k in value)):
        return {str(k): json_value(v, f"{name}[{k!r}]", strict) for k, v in value.items()}
    if strict:
        raise TypeError(f"{name} = {value!r} cannot be saved (only numbers, strings, lists and dicts can, without pickle)")
    return str(value)


def json_loose(d: dict) -> dict:
    """The entries of a diagnostics dict as JSON: each that ``json_value`` cannot
    store exactly becomes its repr."""
    out = {}
    for key, val in d.items():
        try:
            out[str(key)] = json_value(val, str(key))
        except TypeError:
            out[str(key)] = repr(val)
    return out


# -- what save and load know -------------------------------------------------------

_READERS: dict = {}


def register(kind: str, read) -> None:
    """Let ``load`` build files of ``kind`` with ``read(arrays, meta, backend, device)``.

    A class that ``save`` accepts has a method ``_file_parts() -> (arrays, meta)``
    whose ``meta["kind"]`` names it; ``result.py`` and ``estimators.py`` register
    theirs when imported.
    """
    _READERS[kind] = read


def save(obj, path) -> None:
    """Save a ``SolveResult`` or a fitted estimator to ``path`` (an .npz file, no pickle)."""
    parts = getattr(obj, "_file_parts", None)
    if parts is None or type(obj).__name__ not in _READERS:
        raise TypeError(f"save expects a SolveResult or a fitted admmnn estimator, got {type(obj).__name__}")
    arrays, meta = parts()
    write_npz(path, arrays, meta)


def load(path, backend: str | None = None, device=None, kinds=None):
    """Load what ``save`` wrote: a ``SolveResult`` or a fitted estimator.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.
    backend : {"numpy", "torch", "jax"} or None
        Backend of the loaded arrays (default: the backend they were saved from).
    device : optional
        Where to put them.
    kinds : list of str or None
        Restrict what may be loaded (class names); anything else is refused.
    """
    if backend is not None:
        check_backend(backend)
    arrays, meta = read_npz(path, list(_READERS) if kinds is None else list(kinds))
    with malformed(path):
        return _READERS[meta["kind"]](arrays, meta, backend, device)


@contextlib.contextmanager
def malformed(path):
    """Around the code that builds an object from what ``read_npz`` returned:
    a missing or mistyped entry (a file whose checksum matches, so edited, not
    damaged) becomes a ModelFileError, and one raised without the path gets it."""
    path = os.fspath(path)
    try:
        yield
    except ModelFileError as exc:
        if repr(path) in str(exc):
            raise
        raise type(exc)(f"{path!r}: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{path!r}: incomplete or malformed admmnn file ({type(exc).__name__}: {exc})") from None
