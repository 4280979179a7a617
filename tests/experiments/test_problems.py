"""admmnn.experiments.problems: the benchmark registry's conventions, on tiny IDX files."""
import numpy as np
import pytest

from admmnn.experiments import data, problems
from test_data import write_idx


def write_fashion(folder, n_train=60, n_test=30, seed=0):
    """Random images (pixel (0, 0) constant) with labels 0..9 in turn; returns the raw rows."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    raw = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        imgs[:, 0, 0] = 7
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", imgs)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
        raw[prefix] = (imgs.reshape(n, -1).astype(np.float64), labels)
    return raw


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """Tiny Fashion-MNIST files in ./data/fashion-mnist (the loader's default root)."""
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": ()})
    monkeypatch.chdir(tmp_path)
    return write_fashion(tmp_path / "data" / "fashion-mnist")


def standardized(train, *others):
    mean, std = train.mean(0), train.std(0)
    std[train.max(0) == train.min(0)] = 1.0
    return [(A - mean) / std for A in (train,) + others]


def test_binary_design_first_rows_signs_standardisation_bias(fashion):
    Xtr, ytr, Xte, yte = problems.binary_design(classes=(0, 6), n_train=8, n_test=4)
    (A, a), (B, b) = fashion["train"], fashion["t10k"]
    tr, te = np.flatnonzero(np.isin(a, (0, 6)))[:8], np.flatnonzero(np.isin(b, (0, 6)))[:4]
    np.testing.assert_array_equal(ytr, np.where(a[tr] == 0, -1.0, 1.0))  # the first class is -1
    np.testing.assert_array_equal(yte, np.where(b[te] == 0, -1.0, 1.0))
    Ztr, Zte = standardized(A[tr] / 255, B[te] / 255)  # the test rows get the training statistics
    np.testing.assert_allclose(Xtr[:, :-1], Ztr, atol=1e-12)
    np.testing.assert_allclose(Xte[:, :-1], Zte, atol=1e-12)
    assert Xtr.dtype == np.float64 and Xtr.shape == (8, 785) and np.all(Xtr[:, -1] == 1) and np.all(Xte[:, -1] == 1)
    np.testing.assert_allclose(Xtr[:, 0], 0, atol=1e-12)  # a constant pixel becomes 0
    np.testing.assert_allclose(Xtr[:, 1:-1].mean(0), 0, atol=1e-12)


def test_the_order_of_classes_sets_the_sign_and_groups_go_one_against_the_rest(fashion):
    _, y06, _, _ = problems.binary_design(classes=(0, 6), n_train=8, n_test=0)
    X60, y60, Xte, _ = problems.binary_design(classes=(6, 0), n_train=8, n_test=0)
    np.testing.assert_array_equal(y60, -y06)
    assert Xte.shape == (0, 785)
    X, y, _, _ = problems.binary_design(classes=((1, 3, 5, 7, 8, 9), (0, 2, 4, 6)))
    labels = fashion["train"][1]
    assert X.shape == (60, 785)  # every row, in file order
    np.testing.assert_array_equal(y, np.where(np.isin(labels, (0, 2, 4, 6)), 1.0, -1.0))


def test_subset_draws_seeded_rows_in_file_order(fashion):
    keep = np.flatnonzero(np.isin(fashion["train"][1], (0, 6)))
    X1, y1, _, _ = problems.binary_design(n_train=5, subset=3)
    X2, _, _, _ = problems.binary_design(n_train=5, subset=3)
    rows = np.sort(np.random.default_rng(3).choice(keep, 5, replace=False))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, np.where(fashion["train"][1][rows] == 0, -1.0, 1.0))
    (Z,) = standardized(fashion["train"][0][rows] / 255)
    np.testing.assert_allclose(X1[:, :-1], Z, atol=1e-12)


def test_named_fashion_problems(fashion):
    X, y, D, beta = problems.problem("fmnist", n=10, P=3)
    assert X.shape == (10, 785) and y.shape == (10,) and D.shape == (10, 3) and beta == 1e-3
    again = problems.problem("fmnist", n=10, P=3)
    assert all(np.array_equal(u, v) for u, v in zip((X, y, D), again[:3]))
    Xs, *_ = problems.problem("fmnist-s1", n=10, P=3)
    assert Xs.shape == (10, 785) and not np.array_equal(Xs, X)


@pytest.mark.parametrize("name, options, bias", [
    ("correlated", {}, True), ("scnn", dict(n=50, d=4, P=5), False),
    ("cifar-shape", dict(n=30, d=6, P=4), True), ("planted", dict(n=40, d=5, P=3, C=2), True),
])
def test_synthetic_problems_are_reproducible(name, options, bias):
    X, Y, D, beta = problems.problem(name, **options)
    again = problems.problem(name, **options)
    assert all(np.array_equal(u, v) for u, v in zip((X, Y, D), again[:3])) and beta == again[3] > 0
    assert X.dtype == np.float64 and D.shape == (X.shape[0], D.shape[1]) and set(np.unique(D)) <= {0.0, 1.0}
    assert np.all(X[:, -1] == 1) == bias


def test_tutorial_and_unknown_names():
    X, Y, D, beta = problems.problem("tutorial")
    assert X.shape == (890, 65) and Y.shape == (890, 10) and D.shape == (890, 10) and beta == 1e-2
    assert np.all(X[:, -1] == 1) and np.all(Y.sum(1) == 1)
    with pytest.raises(ValueError, match="unknown problem"):
        problems.problem("nope")
    with pytest.raises(ValueError, match="two entries"):
        problems.binary_design(classes=(0, 2, 6))
