"""Baselines (backprop MLP, penalty-method convex training) and conv patterns."""
import numpy as np
import pytest

import admmnn
from admmnn import ConvexReLUClassifier, conv_patterns
from admmnn.experiments.data import load_dataset
from admmnn.experiments.baselines import evaluate, mlp_batch_loss, penalty_batch_loss, train_convex_penalty, train_mlp
from admmnn.operators import Operators

torch = pytest.importorskip("torch")


def problem(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.c_[np.sin(2 * X[:, 0]) + X[:, 1], np.maximum(X[:, 2], 0)]
    return X, Y


# -- conv patterns -----------------------------------------------------------------------
def test_conv_patterns_are_patch_gates():
    C, H, W, k = 2, 6, 5, 3
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((80, C * H * W)), np.ones(80)]
    D, G = conv_patterns(X, 15, image_shape=(C, H, W), kernel=k, seed=1)
    assert D.shape == (80, 15) and G.shape == (C * H * W + 1, 15)
    np.testing.assert_array_equal(D, (X @ G >= 0).astype(float))
    assert len({D[:, j].tobytes() for j in range(15)}) == 15 and D.sum(axis=0).min() > 0
    for j in range(15):
        support = np.argwhere(G[:-1, j].reshape(C, H, W) != 0)
        assert len(support) == C * k * k  # every channel, one k x k patch
        rows, cols = support[:, 1], support[:, 2]
        assert rows.max() - rows.min() == k - 1 and cols.max() - cols.min() == k - 1
        assert set(support[:, 0]) == set(range(C))
    assert np.all(G[-1] != 0)  # the bias column has a gate weight
    D2, G2 = conv_patterns(X, 15, image_shape=(C, H, W), kernel=k, seed=1)
    np.testing.assert_array_equal(G, G2)
    with pytest.raises(ValueError, match="image_shape"):
        conv_patterns(X, 5, image_shape=(3, H, W))
    with pytest.raises(ValueError, match="kernel=7"):
        conv_patterns(X, 5, image_shape=(C, H, W), kernel=7)


@pytest.mark.filterwarnings("ignore:X has .* constant feature")  # border pixels of 0 and 1 digits
def test_estimator_conv_patterns():
    ds = load_dataset("digits", classes=[0, 1], n_train=120, n_test=40)
    clf = ConvexReLUClassifier(n_patterns=6, beta=1e-2, max_iter=100, patterns="conv", image_shape=(1, 8, 8))
    clf.fit(ds.X_train, ds.y_train)
    G = clf.patterns_
    assert G.shape == (65, 6) and np.all((G[:-1] != 0).sum(axis=0) == 9)
    assert clf.score(ds.X_test, ds.y_test) > 0.9
    with pytest.raises(ValueError, match="image_shape"):
        ConvexReLUClassifier(patterns="conv").fit(ds.X_train, ds.y_train)
    with pytest.raises(ValueError, match="patterns must be one of"):
        ConvexReLUClassifier(patterns="fourier").fit(ds.X_train, ds.y_train)


# -- the losses are the convex program's objective ------------------------------------------
def test_mlp_loss_is_the_objective_over_n_and_minibatches_are_unbiased():
    X, Y = problem()
    n, beta = X.shape[0], 0.3
    rng = np.random.default_rng(1)
    W1, b1, W2 = rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((5, 2))
    net = admmnn.ReLUNetwork(W1, W2, b1)
    objective = evaluate(net, X, Y, beta)["objective"]
    explicit = 0.5 * np.sum((np.maximum(X @ W1 + b1, 0) @ W2 - Y) ** 2) + beta / 2 * (np.sum(W1**2) + np.sum(b1**2) + np.sum(W2**2))
    assert objective == pytest.approx(explicit, rel=1e-12)
    params = tuple(torch.tensor(a) for a in (W1, b1, W2))
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    assert n * float(mlp_batch_loss(params, Xt, Yt, beta, n)) == pytest.approx(objective, rel=1e-12)
    batches = torch.randperm(n, generator=torch.Generator().manual_seed(0)).reshape(6, 10)
    mean = np.mean([float(mlp_batch_loss(params, Xt[i], Yt[i], beta, n)) for i in batches])
    assert n * mean == pytest.approx(objective, rel=1e-12)


def test_penalty_loss_is_group_l2_plus_hinge():
    X, Y = problem()
    n, beta, rho = X.shape[0], 0.2, 3.0
    D, _ = admmnn.gaussian_patterns(X, 7, seed=0)
    op = Operators(X, D, 2)
    u = np.random.default_rng(2).standard_normal((4, 2 * 7 * 2))
    fit = 0.5 * np.sum((op.F(u) - Y) ** 2)
    groups = sum(np.linalg.norm(u[:, j]) for j in range(u.shape[1]))  # one group per (sign, pattern, column)
    hinge = np.sum(np.maximum(-op.G(u), 0))
    assert hinge > 0
    ut, Xt, Yt, Dt = (torch.tensor(a) for a in (u, X, Y, D))
    full = n * float(penalty_batch_loss(ut, Xt, Yt, Dt, beta, rho, n))
    assert full == pytest.approx(fit + beta * groups + rho * hinge, rel=1e-12)
    batches = torch.randperm(n, generator=torch.Generator().manual_seed(0)).reshape(4, 15)
    mean = np.mean([float(penalty_batch_loss(ut, Xt[i], Yt[i], Dt[i], beta, rho, n)) for i in batches])
    assert n * mean == pytest.approx(full, rel=1e-12)


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer, batch_size", [("adam", None), ("sgd", 16)])
def test_mlp_training_records_the_objective_of_its_network(optimizer, batch_size):
    X, Y = problem()
    beta = 0.05
    kw = dict(width=8, beta=beta, epochs=40, optimizer=optimizer, batch_size=batch_size, X_test=X[:20], Y_test=Y[:20], lr=3e-2 if optimizer == "adam" else 2e-2)
    res = train_mlp(X, Y, seed=3, **kw)
    h = res.history
    assert h["epoch"] == list(range(41)) and len(h["objective"]) == len(h["time"]) == len(h["test_loss"]) == 41
    assert h["epoch_time"][0] == 0 and all(t > 0 for t in h["epoch_time"][1:])
    np.testing.assert_allclose(np.diff(h["time"]), h["epoch_time"][1:])
    assert res.objective == pytest.approx(evaluate(res.network, X, Y, beta)["objective"], rel=1e-12)
    assert res.objective < 0.5 * h["objective"][0]
    assert res.network.W1.shape == (4, 8) and res.network.b1.shape == (8,) and res.network.W2.shape == (8, 2)
    again = train_mlp(X, Y, seed=3, **kw)
    np.testing.assert_array_equal(again.history["objective"], h["objective"])
    other = train_mlp(X, Y, seed=4, **kw)
    assert other.history["objective"][0] != h["objective"][0]


def test_penalty_method_approaches_the_admm_optimum_any_p_any_batch():
    X, Y = problem(n=50, d=3)
    Xb = np.c_[X, np.ones(len(X))]
    beta = 0.5
    D, _ = admmnn.gaussian_patterns(Xb, 7, seed=0)
    exact = admmnn.solve(Xb, Y, D, beta, tol=1e-4, max_iter=2000)
    assert exact.rel_gap < 1e-3
    # 13 rows a batch (50 = 3 x 13 + 11) and P = 7: no shape ties between them
    res = train_convex_penalty(Xb, Y, D, beta, epochs=300, batch_size=13, lr=1e-2, penalty=5.0, dtype="float64", seed=0)
    h = res.history
    # the same program: its value comes within a few percent of the certified optimum
    # (a little below is possible: the hinge lets the constraints give slightly)
    assert abs(h["convex_objective"][-1] - exact.objective) < 0.05 * exact.objective
    assert h["convex_objective"][-1] < 0.5 * h["convex_objective"][0]  # from 0.5 ||Y||^2 at u ~ 0
    assert h["violation"][-1] < 0.03
    # history objective = the recovered network's true objective (certificate.objective)
    op = Operators(Xb, D, 2)
    obj, viol = admmnn.certificate.objective(op, res.u, Y, beta)
    assert res.objective == pytest.approx(float(obj), rel=1e-10)
    assert h["violation"][-1] == pytest.approx(float(viol), rel=1e-10)
    assert res.network.width == np.count_nonzero(np.linalg.norm(res.u, axis=0))


def test_invalid_baseline_arguments():
    X, Y = problem(n=20)
    with pytest.raises(ValueError, match="optimizer"):
        train_mlp(X, Y, width=3, beta=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="width"):
        train_mlp(X, Y, width=0, beta=0.1)
    with pytest.raises(ValueError, match="Y has 19 rows"):
        train_mlp(X, Y[:19], width=3, beta=0.1)
    with pytest.raises(ValueError, match="X_test"):
        train_mlp(X, Y, width=3, beta=0.1, X_test=X)
    with pytest.raises(ValueError, match="D must contain only 0 and 1"):
        train_convex_penalty(X, Y, np.full((20, 3), 0.5), 0.1)
    with pytest.raises(ValueError, match="penalty"):
        train_convex_penalty(X, Y, np.ones((20, 3)), 0.1, penalty=-1)
