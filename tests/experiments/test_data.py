"""admmnn.experiments.data on tiny files in the real formats, written by the tests themselves."""
import gzip
import pickle
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

import admmnn
from admmnn.experiments import data
from admmnn.experiments.data import DatasetUnavailableError, load_dataset

CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


# -- writers for the real formats -----------------------------------------------------
def cifar_image(label: int, k: int) -> np.ndarray:
    """A (3, 32, 32) uint8 image: R a vertical gradient, G a horizontal one, B a
    checkerboard; pixel (B, 0, 0) codes the label and (B, 0, 1) a serial number."""
    h, w = np.mgrid[0:32, 0:32]
    img = np.stack([4 * h, 4 * w, 255 * ((h + w) % 2)]).astype(np.uint8)
    img[2, 0, 0] = 10 * label
    img[2, 0, 1] = k % 256
    return img


def write_cifar(root, n_per_batch=20, n_test=30, image=cifar_image, test_image=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    k = 0
    for name, count in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        labels = [(k + j) % 10 for j in range(count)]
        imgs = [image(lab, k + j) if test_image is None or name != "test_batch" else test_image(j) for j, lab in enumerate(labels)]
        k += count
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": np.stack(imgs).reshape(count, 3072)}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": CIFAR_NAMES, b"num_cases_per_batch": n_per_batch}, fh, protocol=2)
    return folder


def write_idx(path, array: np.ndarray, compress=True):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def mnist_image(label: int) -> np.ndarray:
    h, w = np.mgrid[0:28, 0:28]
    img = (9 * w).astype(np.uint8)  # a horizontal gradient
    img[0, 0] = label
    return img


def write_mnist_like(folder, n_train=40, n_test=20, compress=True):
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte", np.stack([mnist_image(v) for v in labels]), compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8), compress)
    return folder


@pytest.fixture(autouse=True)
def no_system_copies(monkeypatch, tmp_path):
    """Never read the machine's own Fashion-MNIST unless a test says so."""
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": (str(tmp_path / "no-system-copy"),)})


@pytest.fixture
def offline(monkeypatch):
    """Every download fails as it does on a machine without network."""
    calls = []

    def fail(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    return calls


# -- CIFAR-10 -------------------------------------------------------------------------
def test_cifar_shapes_labels_and_class_subset(tmp_path):
    write_cifar(tmp_path)
    ds = load_dataset("cifar10", root=tmp_path, standardize=False)
    assert ds.X_train.shape == (100, 3072) and ds.X_test.shape == (30, 3072)
    assert ds.image_shape == (3, 32, 32) and ds.y_train.dtype == np.int64
    assert ds.class_names[:2] == ("airplane", "automobile")
    # the label coded in each image matches the label returned with it
    coded = np.rint(ds.X_train.reshape(-1, 3, 32, 32)[:, 2, 0, 0] * 255 / 10).astype(int)
    np.testing.assert_array_equal(coded, ds.y_train)

    sub = load_dataset("cifar10", root=tmp_path, classes=["automobile", "airplane"], standardize=False)
    assert sub.classes == (1, 0) and sub.class_names == ("automobile", "airplane")
    assert sub.X_train.shape == (20, 3072) and sub.X_test.shape == (6, 3072)
    coded = np.rint(sub.X_train.reshape(-1, 3, 32, 32)[:, 2, 0, 0] * 255 / 10).astype(int)
    np.testing.assert_array_equal(np.where(coded == 1, 0, 1), sub.y_train)  # automobile -> 0, airplane -> 1
    assert set(sub.y_train) == {0, 1}

    ids = load_dataset("cifar10", root=tmp_path, classes=[0, 1], standardize=False)
    np.testing.assert_array_equal(np.sort(ids.X_train, axis=0), np.sort(sub.X_train, axis=0))


def test_cifar_sample_counts_are_seeded_subsets(tmp_path):
    write_cifar(tmp_path)
    a = load_dataset("cifar10", root=tmp_path, n_train=7, n_test=5, standardize=False, seed=1)
    b = load_dataset("cifar10", root=tmp_path, n_train=7, n_test=5, standardize=False, seed=1)
    c = load_dataset("cifar10", root=tmp_path, n_train=7, n_test=5, standardize=False, seed=2)
    assert a.X_train.shape == (7, 3072) and a.X_test.shape == (5, 3072)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    serial = lambda ds: np.rint(ds.X_train.reshape(-1, 3, 32, 32)[:, 2, 0, 1] * 255).astype(int)  # noqa: E731
    assert len(set(serial(a))) == 7 and not np.array_equal(serial(a), serial(c))
    with pytest.raises(ValueError, match="n_train=101"):
        load_dataset("cifar10", root=tmp_path, n_train=101)


def test_downsampling_keeps_each_channel_on_its_grid(tmp_path):
    write_cifar(tmp_path)
    ds = load_dataset("cifar10", root=tmp_path, downsample=3, standardize=False)
    assert ds.image_shape == (3, 11, 11) and ds.X_train.shape == (100, 363)
    imgs = np.rint(ds.X_train.reshape(-1, 3, 11, 11) * 255).astype(int)
    i, j = np.mgrid[0:11, 0:11]
    np.testing.assert_array_equal(imgs[:, 0], np.broadcast_to(12 * i, (100, 11, 11)))  # vertical gradient, stride 3
    np.testing.assert_array_equal(imgs[:, 1], np.broadcast_to(12 * j, (100, 11, 11)))  # horizontal gradient
    board = 255 * ((i + j) % 2)
    np.testing.assert_array_equal(imgs[:, 2, 1:, :], np.broadcast_to(board[1:], (100, 10, 11)))  # checkerboard (row 0 codes labels)
    # the reference's mistake (channel-major rows read as HWC) would give other pixels
    raw = np.stack([cifar_image(0, 0)]).reshape(1, 3072)
    scrambled = raw.reshape(1, 32, 32, 3)[:, ::3, ::3, :].transpose(0, 3, 1, 2)
    assert not np.array_equal(scrambled[0, 0], 12 * i)


def test_standardisation_uses_training_statistics_only(tmp_path):
    bright = lambda j: np.full((3, 32, 32), 250, dtype=np.uint8)  # noqa: E731

    def noisy(label, k):  # random pixels, but pixel (0, 0, 0) constant
        img = np.random.default_rng(k).integers(0, 120, size=(3, 32, 32)).astype(np.uint8)
        img[0, 0, 0] = 7
        return img

    write_cifar(tmp_path / "a", image=noisy)
    write_cifar(tmp_path / "b", image=noisy, test_image=bright)
    plain = load_dataset("cifar10", root=tmp_path / "a", standardize=False)
    a = load_dataset("cifar10", root=tmp_path / "a")
    b = load_dataset("cifar10", root=tmp_path / "b")
    # the training split and its statistics do not depend on the test split at all
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_allclose(a.mean, plain.X_train.mean(axis=0))
    varying = plain.X_train.max(axis=0) > plain.X_train.min(axis=0)
    assert varying.sum() == 3071
    np.testing.assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(a.X_train.std(axis=0)[varying], 1)
    np.testing.assert_array_equal(a.std[~varying], 1.0)  # constant pixels are not divided by zero
    # the test split is mapped with the training statistics, not its own
    np.testing.assert_allclose(b.X_test, np.broadcast_to((250 / 255 - a.mean) / a.std, (30, 3072)))
    assert abs(b.X_test.mean()) > 1  # its own statistics would have centred it

    ch = load_dataset("cifar10", root=tmp_path / "b", standardize="channel")
    per_channel = plain.X_train.reshape(-1, 3, 1024)
    np.testing.assert_allclose(ch.mean.reshape(3, 1024)[:, 0], per_channel.mean(axis=(0, 2)))
    np.testing.assert_allclose(ch.X_train.reshape(-1, 3, 1024).mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(ch.X_test, np.broadcast_to((250 / 255 - ch.mean) / ch.std, (30, 3072)))


# -- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------
@pytest.mark.parametrize("name, sub, compress", [("fashion-mnist", "fashion-mnist", True), ("mnist", "MNIST/raw", False)])
def test_idx_files(tmp_path, name, sub, compress):
    write_mnist_like(tmp_path / sub, compress=compress)
    ds = load_dataset(name, root=tmp_path, standardize=False)
    assert ds.X_train.shape == (40, 784) and ds.X_test.shape == (20, 784) and ds.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(ds.y_train, np.arange(40) % 10)
    imgs = np.rint(ds.X_train.reshape(-1, 28, 28) * 255).astype(int)
    np.testing.assert_array_equal(imgs[:, 0, 0], ds.y_train)
    np.testing.assert_array_equal(imgs[:, 5, 1:], np.broadcast_to(9 * np.arange(1, 28), (40, 27)))
    half = load_dataset(name, root=tmp_path, standardize=False, downsample=2, classes=[3, 7])
    assert half.image_shape == (1, 14, 14) and half.X_train.shape == (8, 196)
    np.testing.assert_array_equal(np.rint(half.X_train.reshape(-1, 14, 14)[:, 5, 1:] * 255), np.broadcast_to(18 * np.arange(1, 14), (8, 13)))
    assert sorted(set(half.y_train)) == [0, 1]


def test_fashion_mnist_from_the_debian_directory(tmp_path, monkeypatch, offline):
    system = write_mnist_like(tmp_path / "usr-share")
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": (str(system),)})
    ds = load_dataset("fashion-mnist", root=tmp_path / "empty", n_train=10)
    assert ds.source == str(system) and ds.X_train.shape == (10, 784)
    assert ds.class_names[0] == "T-shirt/top" and not offline  # found on disk: no download tried


# -- missing data ------------------------------------------------------------------------
def test_missing_fashion_mnist_says_what_was_tried_and_how_to_get_it(tmp_path, offline):
    pytest.importorskip("torchvision")
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("fashion-mnist", root=tmp_path / "data")
    msg = str(info.value)
    assert offline, "the real torchvision download path should have been tried"
    assert "download failed" in msg and "no network (test)" in msg
    for path in (tmp_path / "data" / "FashionMNIST" / "raw", tmp_path / "data" / "fashion-mnist", tmp_path / "no-system-copy"):
        assert str(path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "torchvision.datasets.FashionMNIST('data', download=True)" in msg
    err = info.value
    assert isinstance(err, FileNotFoundError) and isinstance(err, RuntimeError)
    assert err.__cause__ is None and err.__context__ is None  # no urllib traceback chained on


def test_missing_cifar_without_torchvision_download(tmp_path, monkeypatch):
    monkeypatch.setitem(data._DOWNLOADERS, "cifar10", lambda root: "torchvision is not installed (pip install torchvision)")
    with pytest.raises(DatasetUnavailableError, match="torchvision is not installed") as info:
        load_dataset("cifar10", root=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)
    assert "CIFAR10('data', download=True)" in str(info.value)


def test_download_false_tries_no_network(tmp_path, offline):
    with pytest.raises(DatasetUnavailableError, match="no download was tried"):
        load_dataset("mnist", root=tmp_path, download=False)
    assert not offline


def test_incomplete_copy_counts_as_missing(tmp_path, offline):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetUnavailableError, match="CIFAR-10 is not available"):
        load_dataset("cifar10", root=tmp_path, download=False)


# -- digits and synthetic ------------------------------------------------------------------
def test_digits_split_and_subset():
    ds = load_dataset("digits")
    assert ds.X_train.shape == (1438, 64) and ds.X_test.shape == (359, 64) and ds.image_shape == (1, 8, 8)
    both = np.vstack([ds.X_train, ds.X_test])
    assert np.unique(both, axis=0).shape[0] > 1700  # the splits are disjoint draws of the images
    sub = load_dataset("digits", classes=["3", 8], n_train=50, n_test=20)
    assert sub.X_train.shape == (50, 64) and sub.classes == (3, 8) and set(sub.y_train) <= {0, 1}
    with pytest.raises(ValueError, match="n_train"):
        load_dataset("digits", classes=[0, 1], n_train=400, n_test=50)


def test_synthetic_teacher_is_a_known_answer():
    ds = load_dataset("synthetic", n_train=200, n_test=200, d=5, width=3, noise=0.0, seed=1)
    t = ds.teacher
    np.testing.assert_allclose(ds.y_train, t.predict(ds.X_train)[:, 0])
    # patterns of the teacher's neurons: the convex optimum is at most the teacher's cost
    D = (ds.X_train @ t.W1 >= 0).astype(float)
    beta = 1e-3
    res = admmnn.solve(ds.X_train, ds.y_train, D, beta, tol=1e-6, max_iter=3000)
    teacher_cost = beta * np.sum(np.linalg.norm(t.W1, axis=0) * np.abs(t.W2[:, 0]))
    assert res.status == "optimal" and res.objective <= teacher_cost * (1 + 1e-6)
    assert res.network.width == 3  # it finds the three planted neurons ...
    err = np.abs(res.network.predict(ds.X_test)[:, 0] - ds.y_test).max()
    assert err < 1e-2 * np.abs(ds.y_test).max()  # ... and so generalises exactly

    noisy = load_dataset("synthetic", n_train=2000, n_test=10, d=4, width=2, noise=0.5, seed=3)
    resid = noisy.y_train - noisy.teacher.predict(noisy.X_train)[:, 0]
    assert 0.45 < resid.std() < 0.55


# -- argument checks ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="imagenet"), "name must be one of"),
        (dict(name="digits", n_train=0), "n_train"),
        (dict(name="digits", n_test=2.5), "n_test"),
        (dict(name="digits", downsample=0), "downsample"),
        (dict(name="digits", standardize="robust"), "standardize"),
        (dict(name="digits", classes=["cat"]), "classes: unknown class 'cat'"),
        (dict(name="digits", classes=[1, 1]), "repeated"),
        (dict(name="digits", classes=[12]), "out of range"),
        (dict(name="digits", classes=[]), "at least one class"),
        (dict(name="synthetic", classes=[0]), "do not apply"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        load_dataset(name, **kwargs)


def test_unknown_options_are_type_errors():
    with pytest.raises(TypeError, match="width"):
        load_dataset("digits", width=3)
    with pytest.raises(TypeError, match="colour"):
        load_dataset("synthetic", colour=3)
