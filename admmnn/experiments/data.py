"""Datasets behind one loader: ``load_dataset(name, ...) -> Dataset``.

Sources (downloaded where there is network, else read from local files):

* ``"cifar10"``: the CIFAR-10 python pickle batches in ``root/cifar-10-batches-py``
  (downloaded there by torchvision when missing).
* ``"fashion-mnist"``, ``"mnist"``: the standard IDX files (``.gz`` or not) in
  ``root/FashionMNIST/raw`` / ``root/MNIST/raw`` (torchvision's layout, where it
  downloads them), ``root/fashion-mnist`` / ``root/mnist``, and for Fashion-MNIST
  the Debian package's ``/usr/share/datasets/fashion-mnist``.
* ``"digits"``: scikit-learn's bundled 8 x 8 digits (1797 images, no download).
* ``"synthetic"``: a planted two-layer ReLU teacher (see ``synthetic_teacher``).

Images are kept on their grid, ``(N, C, H, W)``, until the very end, so that
downsampling by a stride picks the same pixels in every channel; rows are then
flattened channel-major (the layout of the CIFAR-10 pickles). Standardisation
uses statistics of the training split only and applies them to both splits.

Files are read by this module (pickle, IDX); torchvision is used only to
download, so tiny files in the same formats work as well as the real ones.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..network import ReLUNetwork
from ..validation import check_choice, check_positive

DATASETS = ("cifar10", "fashion-mnist", "mnist", "digits", "synthetic")

#: Directories searched after ``root`` (module level so tests can point it elsewhere).
SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

_TITLES = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}
_TORCHVISION = {"cifar10": "CIFAR10", "fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


class DatasetUnavailableError(FileNotFoundError, RuntimeError):
    """The data set is neither on disk nor downloadable; the message says what was
    tried and how to get it."""


@dataclass
class Dataset:
    """Train and test arrays of one data set.

    X_train, X_test : (n, d) float64, rows flattened channel-major from ``image_shape``.
    y_train, y_test : (n,) int64 labels ``0..k-1`` indexing ``classes`` (or, for
        ``synthetic``, (n,) or (n, C) float64 regression targets).
    classes : the original label ids kept, in the order of the new labels.
    class_names : their names.
    image_shape : (C, H, W) of a row after downsampling, or None for non-images.
    mean, std : the training-split statistics used to standardise (None if not).
    source : where the data were read from.
    teacher : for ``synthetic``, the planted network (``teacher.predict(X)`` is
        the noiseless target).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: tuple = ()
    class_names: tuple = ()
    image_shape: tuple | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    source: str = ""
    teacher: ReLUNetwork | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, "
            f"classes={list(self.class_names)}, image_shape={self.image_shape}, source={self.source!r})"
        )


def load_dataset(
    name: str,
    *,
    classes=None,
    n_train: int | None = None,
    n_test: int | None = None,
    downsample: int = 1,
    standardize: bool | str = True,
    root: str | os.PathLike = "data",
    seed: int = 0,
    download: bool = True,
    **options,
) -> Dataset:
    """Load a data set as train/test arrays.

    Parameters
    ----------
    name : one of ``DATASETS``.
    classes : labels to keep, as ids (``[0, 1]``) or names (``["airplane",
        "automobile"]``); they become the labels ``0..k-1`` in this order.
        Default: all classes.
    n_train, n_test : samples per split, drawn at random (seeded) from the
        split, in file order. Default: the whole split (digits: a seeded 80/20
        split of the 1797 images; synthetic: 500 each).
    downsample : integer stride on the image grid, ``image[:, ::s, ::s]`` per
        channel (``32 x 32`` with ``s = 3`` gives ``11 x 11``).
    standardize : True or "feature" (zero mean, unit variance per feature),
        "channel" (per image channel) or False (pixels scaled to [0, 1] only).
        Statistics come from the training split alone. Not applied to
        ``synthetic``, whose features are drawn standard normal already.
    root : directory searched first and downloaded into.
    seed : seeds the subsets (and the synthetic data).
    download : try a torchvision download when no copy is found.
    options : for ``synthetic`` only: ``d``, ``width``, ``noise``, ``n_outputs``.

    Raises
    ------
    DatasetUnavailableError when the files are missing and cannot be downloaded;
    ValueError / TypeError for invalid arguments.
    """
    check_choice("name", name, DATASETS)
    check_positive("n_train", n_train, integer=True, allow_none=True)
    check_positive("n_test", n_test, integer=True, allow_none=True)
    check_positive("downsample", downsample, integer=True)
    if standardize not in (True, False, "feature", "channel"):
        raise ValueError(f"standardize must be True, False, 'feature' or 'channel', got {standardize!r}")
    if name == "synthetic":
        if classes is not None or downsample != 1:
            raise ValueError("classes and downsample do not apply to the synthetic data set")
        return _synthetic_dataset(n_train or 500, n_test or 500, seed, **options)
    if options:
        raise TypeError(f"unexpected keyword argument(s) for {name!r}: {sorted(options)}")
    rng = np.random.default_rng(seed)

    if name == "digits":
        imgs, labels, names, source, scale = _digits()
        keep, ids = _class_filter(labels, classes, names)
        idx = rng.permutation(keep)
        n_te = n_test if n_test is not None else int(round(0.2 * idx.size))
        n_tr = n_train if n_train is not None else idx.size - n_te
        if n_tr + n_te > idx.size:
            raise ValueError(f"n_train + n_test = {n_tr + n_te} exceeds the {idx.size} digits images of the chosen classes")
        tr, te = np.sort(idx[:n_tr]), np.sort(idx[n_tr:n_tr + n_te])
        parts = [(imgs[tr], labels[tr]), (imgs[te], labels[te])]
    else:
        (tr_imgs, tr_labels, te_imgs, te_labels), names, source = _read_raw(name, Path(root), download)
        scale = 255.0
        parts = []
        for split, imgs, labels, n in (("n_train", tr_imgs, tr_labels, n_train), ("n_test", te_imgs, te_labels, n_test)):
            keep, ids = _class_filter(labels, classes, names)
            sel = _subset(keep, n, split, rng)
            parts.append((imgs[sel], labels[sel]))

    (A, a), (B, b) = parts
    A = _downsample(A, downsample).astype(np.float64) / scale
    B = _downsample(B, downsample).astype(np.float64) / scale
    image_shape = tuple(int(s) for s in A.shape[1:])
    X_train, X_test = A.reshape(A.shape[0], -1), B.reshape(B.shape[0], -1)
    mean = std = None
    if standardize:
        mean, std = _train_statistics(A, standardize)
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return Dataset(
        X_train=X_train,
        y_train=_relabel(a, ids),
        X_test=X_test,
        y_test=_relabel(b, ids),
        name=name,
        classes=tuple(int(c) for c in ids),
        class_names=tuple(names[int(c)] for c in ids),
        image_shape=image_shape,
        mean=mean,
        std=std,
        source=source,
        info={"downsample": downsample, "standardize": standardize, "seed": seed},
    )


# -- selection and preprocessing ------------------------------------------------
def _class_filter(labels: np.ndarray, classes, names) -> tuple[np.ndarray, np.ndarray]:
    """Row indices whose label is in ``classes`` and the kept label ids, in order."""
    if classes is None:
        return np.arange(labels.size), np.arange(len(names))
    if isinstance(classes, (str, int, np.integer)):
        classes = [classes]
    ids = []
    for c in classes:
        if isinstance(c, str) and c in names:
            ids.append(names.index(c))
        elif isinstance(c, str) and c.strip().lstrip("-").isdigit():
            ids.append(int(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            ids.append(int(c))
        else:
            raise ValueError(f"classes: unknown class {c!r}; choose ids 0..{len(names) - 1} or names {list(names)}")
    if not ids:
        raise ValueError("classes must name at least one class (or be None for all)")
    bad = [c for c in ids if not 0 <= c < len(names)]
    if bad:
        raise ValueError(f"classes: ids {bad} out of range 0..{len(names) - 1}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"classes has repeated entries: {list(classes)}")
    ids = np.asarray(ids, dtype=np.int64)
    return np.flatnonzero(np.isin(labels, ids)), ids


def _relabel(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Map label ``ids[i]`` to ``i`` (int64)."""
    lut = np.full(int(max(ids.max(), labels.max())) + 1, -1, dtype=np.int64)
    lut[ids] = np.arange(ids.size)
    return lut[labels.astype(np.int64)]


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """``train`` and ``others`` standardised with the statistics of ``train`` alone: per
    column, minus the training mean, divided by the training standard deviation (1 for a
    column constant over the training rows, which becomes 0). Rows are flat (n, d)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(train.max(axis=0) == train.min(axis=0), 1.0, std)  # exact, unlike std == 0
    return tuple((A - mean) / std for A in (train,) + others)


def _subset(keep: np.ndarray, n: int | None, what: str, rng) -> np.ndarray:
    """``n`` of the indices ``keep`` at random (all if None), in file order."""
    if n is None:
        return keep
    if n > keep.size:
        raise ValueError(f"{what}={n} but the split has only {keep.size} samples of the chosen classes")
    return np.sort(rng.choice(keep, size=n, replace=False))


def _downsample(imgs: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th row and column of each channel of (N, C, H, W) images."""
    return imgs if stride == 1 else np.ascontiguousarray(imgs[:, :, ::stride, ::stride])


def _train_statistics(A: np.ndarray, mode) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (flattened like a row) of training images A (N, C, H, W).

    ``mode`` True / "feature": per pixel and channel; "channel": one pair per
    channel. A constant feature gets std 1 (it becomes 0, not noise / 0).
    """
    axes = (0, 2, 3) if mode == "channel" else (0,)
    mean = A.mean(axis=axes, keepdims=True)
    std = A.std(axis=axes, keepdims=True)
    constant = A.max(axis=axes, keepdims=True) == A.min(axis=axes, keepdims=True)  # exact, unlike std == 0
    std = np.where(constant, 1.0, std)
    shape = A.shape[1:]
    return np.broadcast_to(mean[0], shape).reshape(-1).copy(), np.broadcast_to(std[0], shape).reshape(-1).copy()


# -- sources --------------------------------------------------------------------
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    imgs = bunch.images.reshape(-1, 1, 8, 8)
    return imgs, bunch.target.astype(np.int64), DIGIT_CLASSES, "sklearn.datasets.load_digits", 16.0


def _read_raw(name: str, root: Path, download: bool):
    """(train images, train labels, test images, test labels), class names, source."""
    where = _locate(name, root, download)
    if name == "cifar10":
        train = [_read_cifar_batch(where / f) for f in CIFAR_FILES[:-1]]
        test = _read_cifar_batch(where / CIFAR_FILES[-1])
        arrays = (
            np.concatenate([t[0] for t in train]),
            np.concatenate([t[1] for t in train]),
            test[0],
            test[1],
        )
        return arrays, _cifar_names(where), str(where)
    files = [_find_idx(where, stem) for stem in IDX_FILES]
    imgs_tr, lab_tr, imgs_te, lab_te = (_read_idx(f) for f in files)
    names = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    return (imgs_tr[:, None], lab_tr.astype(np.int64), imgs_te[:, None], lab_te.astype(np.int64)), names, str(where)


def _candidates(name: str, root: Path) -> list[Path]:
    if name == "cifar10":
        return [root / CIFAR_DIR]
    local = [root / _TORCHVISION[name] / "raw", root / name]
    return local + [Path(p) for p in SYSTEM_DIRS.get(name, ())]


def _complete(name: str, where: Path) -> bool:
    if name == "cifar10":
        return all((where / f).is_file() for f in CIFAR_FILES)
    return all(_find_idx(where, stem) is not None for stem in IDX_FILES)


def _locate(name: str, root: Path, download: bool) -> Path:
    """The first directory holding a complete copy; else download; else raise."""
    tried = _candidates(name, root)
    for where in tried:
        if _complete(name, where):
            return where
    outcome = "no download was tried (download=False)"
    if download:
        error = _DOWNLOADERS[name](root)
        if error is None:
            for where in tried:
                if _complete(name, where):
                    return where
            outcome = "the download finished but left no complete copy"
        else:
            outcome = f"the download failed: {error}"
    raise DatasetUnavailableError(_missing_message(name, root, tried, outcome))


def _missing_message(name: str, root: Path, tried: list[Path], outcome: str) -> str:
    title = _TITLES[name]
    files = ", ".join(CIFAR_FILES + ("batches.meta",)) if name == "cifar10" else ", ".join(f + "[.gz]" for f in IDX_FILES)
    lines = [f"{title} is not available: no complete copy was found and {outcome}.", f"Looked for {files} in:"]
    lines += [f"  {p}" for p in tried]
    lines.append("To get the data, either")
    if name == "fashion-mnist":
        lines.append("  * apt-get install dataset-fashion-mnist   (Debian; installs /usr/share/datasets/fashion-mnist), or")
    lines.append(
        f"  * on a machine with internet, run  python -c \"import torchvision; "
        f"torchvision.datasets.{_TORCHVISION[name]}('data', download=True)\"  there, then copy the"
    )
    lines.append(f"    data/ folder it fills to {root} on this machine (or pass root= pointing at that copy).")
    return "\n".join(lines)


def _torchvision_download(name: str, root: Path) -> str | None:
    """Download with torchvision into ``root``; None on success, else why not."""
    try:
        import torchvision
    except ImportError:
        return "torchvision is not installed (pip install torchvision)"
    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as exc:  # URLError, OSError, RuntimeError(...): all mean "no data"
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {' '.join(t.strip() for t in text[:3])}" if text else type(exc).__name__
    return None


_DOWNLOADERS = {name: (lambda root, _n=name: _torchvision_download(_n, root)) for name in _TORCHVISION}


# -- file formats -----------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _find_idx(where: Path, stem: str) -> Path | None:
    for cand in (where / stem, where / (stem + ".gz")):
        if cand.is_file():
            return cand
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_TYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says shape {dims} but holds {data.size} values")
    return data.reshape(dims)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        obj = pickle.load(fh, encoding="bytes")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch: rows of 3072 = 3 channels x 32 x 32, channel-major."""
    batch = _unpickle(path)
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: expected rows of 3072 values, got shape {data.shape}")
    return data.reshape(-1, 3, 32, 32), np.asarray(batch["labels"], dtype=np.int64)


def _cifar_names(where: Path) -> tuple:
    meta = where / "batches.meta"
    if not meta.is_file():
        return CIFAR10_CLASSES
    names = _unpickle(meta).get("label_names", CIFAR10_CLASSES)
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


# -- synthetic teacher ------------------------------------------------------------
def synthetic_teacher(
    n: int = 500,
    d: int = 10,
    width: int = 5,
    noise: float = 0.0,
    n_outputs: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, ReLUNetwork]:
    """Data from a planted two-layer ReLU network.

    ``X`` (n, d) is standard normal; the teacher has ``width`` neurons with
    unit-norm input weights and no bias, output weights N(0, 1); ``Y =
    teacher.predict(X) + noise * N(0, 1)``, shape (n,) if ``n_outputs == 1``.

    Returns X, Y, teacher.
    """
    check_positive("n", n, integer=True)
    check_positive("d", d, integer=True)
    check_positive("width", width, integer=True)
    check_positive("n_outputs", n_outputs, integer=True)
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((d, width))
    W1 /= np.linalg.norm(W1, axis=0)
    teacher = ReLUNetwork(W1, rng.standard_normal((width, n_outputs)))
    X = rng.standard_normal((n, d))
    Y = teacher.predict(X) + noise * rng.standard_normal((n, n_outputs))
    return X, (Y[:, 0] if n_outputs == 1 else Y), teacher


def _synthetic_dataset(n_train: int, n_test: int, seed: int, **options) -> Dataset:
    unknown = set(options) - {"d", "width", "noise", "n_outputs"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) for 'synthetic': {sorted(unknown)}")
    X, Y, teacher = synthetic_teacher(n_train + n_test, seed=seed, **options)
    return Dataset(
        X_train=X[:n_train],
        y_train=Y[:n_train],
        X_test=X[n_train:],
        y_test=Y[n_train:],
        name="synthetic",
        source="planted two-layer ReLU teacher",
        teacher=teacher,
        info={"seed": seed, **options},
    )
