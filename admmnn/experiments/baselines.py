"""Gradient-trained baselines for the comparison with ADMM: the non-convex network trained by
backprop, and the convex program with penalised constraints trained by Adam or SGD.

Both minimise, or approximate, the objective of the convex program as a
function of a two-layer ReLU network ``f(x) = relu(x W1 + b1) W2``:

    0.5 ||f(X) - Y||_F^2 + beta/2 (||W1||^2 + ||b1||^2 + ||W2||^2)

(sum over samples, not mean; ``ReLUNetwork.penalty``), which is what
``admmnn.solve`` reports for its recovered network. Every epoch both record that
objective on the full training set, the train/test loss (mean of
``0.5 ||f(x) - y||^2`` per sample) and accuracy, all from the network itself,
and the seconds spent training (evaluation excluded).

* ``train_mlp``: the non-convex network trained end to end by Adam or SGD.
* ``train_convex_penalty``: the convex program over fixed patterns D trained by
  Adam or SGD, with the cone constraints replaced by a hinge penalty.
* ``train_admm``: ``admmnn.solve`` itself, with the same metrics at every check,
  so that all three can be plotted and tabulated alike.

Both optimise ``objective / n`` (same minimiser, learning rates on the usual
scale); a minibatch of b samples gives the unbiased estimate with the data terms
scaled by ``n / b``.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .. import certificate
from .._backend import to_numpy
from ..loop import PHASES
from ..network import ReLUNetwork, recover_network
from ..operators import Operators
from ..solve import solve
from ..validation import as_array, check_choice, check_n, check_patterns, check_positive

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-2}
SMALL_STEP_FLOPS = 5e7  # below this (forward + backward of a batch), train on one thread


@dataclass
class TrainResult:
    """Outcome of a baseline run.

    network : the trained ``ReLUNetwork`` (NumPy, float64).
    history : per-epoch lists, epoch 0 being the starting point: epoch,
        objective, train_loss, train_accuracy, test_loss, test_accuracy,
        epoch_time (training seconds of that epoch), time (cumulative);
        ``train_convex_penalty`` adds convex_objective, hinge and violation.
    info : the settings used.
    u : for ``train_convex_penalty``, the final (d, 2PC) convex variable.
    """

    network: ReLUNetwork
    history: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    u: np.ndarray | None = None

    @property
    def objective(self) -> float:
        """Final full-data objective."""
        return self.history["objective"][-1]


# -- metrics shared by every method ------------------------------------------------
def targets_2d(Y) -> np.ndarray:
    """Targets as a float64 (n, C) host array."""
    Y = np.asarray(to_numpy(Y), dtype=np.float64)
    return Y[:, None] if Y.ndim == 1 else Y


def is_classification(Y) -> bool:
    """True for +-1 targets (one column) or one-hot rows (several columns)."""
    Y = targets_2d(Y)
    if Y.shape[1] == 1:
        return bool(np.all(np.abs(Y) == 1))
    return bool(np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1))


def accuracy(out, Y) -> float:
    """Share of rows whose output picks the target class (sign for one column)."""
    out, Y = targets_2d(out), targets_2d(Y)
    if Y.shape[1] == 1:
        return float(np.mean((out[:, 0] > 0) == (Y[:, 0] > 0)))
    return float(np.mean(np.argmax(out, axis=1) == np.argmax(Y, axis=1)))


def evaluate(network: ReLUNetwork, X, Y, beta: float | None = None, classification: bool = True) -> dict:
    """``loss`` (mean per-sample ``0.5 ||f(x) - y||^2``), ``accuracy`` (if
    ``classification``) and, given ``beta``, ``objective`` (sum form plus
    weight decay) of ``network`` on (X, Y)."""
    X = np.asarray(to_numpy(X), dtype=np.float64)
    Y = targets_2d(Y)
    out = to_numpy(network.predict(X))
    sse = float(np.sum((out - Y) ** 2))
    m = {"loss": 0.5 * sse / X.shape[0], "accuracy": accuracy(out, Y) if classification else float("nan")}
    if beta is not None:
        m["objective"] = 0.5 * sse + network.penalty(beta)
    return m


# -- the shared training loop ------------------------------------------------------------
def _torch_setup(dtype: str, seed: int):
    import torch

    check_choice("dtype", dtype, ("float32", "float64"))
    gen = torch.Generator().manual_seed(int(seed))
    return torch, getattr(torch, dtype), gen


def _optimizer(torch, name, params, lr, momentum):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


@contextmanager
def _threads(step_flops: float):
    """One torch thread for small steps: on a busy machine a second thread makes
    a tiny step wait for the scheduler (measured 30 ms instead of 0.7 ms)."""
    import torch

    before = torch.get_num_threads()
    if step_flops < SMALL_STEP_FLOPS:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(params, batch_loss, snapshot, n, *, epochs, batch_size, optimizer, lr, momentum, gen, log):
    """Minibatch loop: ``batch_loss(idx)`` is the scaled objective on rows idx
    (None for all); after every epoch ``snapshot()`` records the metrics into
    ``log`` (a dict of lists) with the epoch's training seconds."""
    import torch

    opt = _optimizer(torch, optimizer, params, lr, momentum)
    b = n if batch_size is None else min(batch_size, n)
    with _threads(6.0 * b * sum(p.numel() for p in params)):
        return _epochs(opt, batch_loss, snapshot, n, b, epochs, gen, log)


def _epochs(opt, batch_loss, snapshot, n, b, epochs, gen, log):
    import torch

    def record(epoch, seconds):
        metrics = snapshot()
        log.setdefault("epoch", []).append(epoch)
        log.setdefault("epoch_time", []).append(seconds)
        log.setdefault("time", []).append((log["time"][-1] if log.get("time") else 0.0) + seconds)
        for key, val in metrics.items():
            log.setdefault(key, []).append(val)
        return metrics

    record(0, 0.0)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen) if b < n else None
        for start in range(0, n, b):
            idx = None if order is None else order[start:start + b]
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(idx)
            loss.backward()
            opt.step()
        metrics = record(epoch, time.perf_counter() - t0)
        if not np.isfinite(metrics["objective"]):
            break
    return log


def _check_common(X, Y, beta, epochs, optimizer, lr, batch_size, X_test, Y_test):
    X = np.asarray(to_numpy(as_array(X, "X")), dtype=np.float64)
    Y = as_array(Y, "Y", ndims=(1, 2))
    check_n(X.shape[0], Y, "Y")
    check_positive("beta", beta)
    check_positive("epochs", epochs, integer=True)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive("lr", lr, allow_none=True)
    check_positive("batch_size", batch_size, integer=True, allow_none=True)
    test = None
    if (X_test is None) != (Y_test is None):
        raise ValueError("pass both X_test and Y_test, or neither")
    if X_test is not None:
        Xt = np.asarray(to_numpy(as_array(X_test, "X_test")), dtype=np.float64)
        if Xt.shape[1] != X.shape[1]:
            raise ValueError(f"X_test has {Xt.shape[1]} features but X has {X.shape[1]}")
        Yt = as_array(Y_test, "Y_test", ndims=(1, 2))
        check_n(Xt.shape[0], Yt, "Y_test")
        test = (Xt, targets_2d(Yt))
    return X, targets_2d(Y), test, (DEFAULT_LR[optimizer] if lr is None else lr)


def _snapshot(net_fn, X, Y, test, beta, classification):
    """Metrics of the current network on the training (and test) data."""
    net = net_fn()
    tr = evaluate(net, X, Y, beta, classification)
    out = {"objective": tr["objective"], "train_loss": tr["loss"], "train_accuracy": tr["accuracy"]}
    if test is not None:
        te = evaluate(net, *test, classification=classification)
        out.update(test_loss=te["loss"], test_accuracy=te["accuracy"])
    return out


# -- the losses that training minimises ------------------------------------------------------
def mlp_batch_loss(params, xb, yb, beta: float, n: int):
    """``objective / n`` estimated on the batch (xb, yb) of a data set of n rows
    (exact for the full batch; averaged over a partition into equal batches,
    also exact): ``0.5 ||f(xb) - yb||^2 / b + beta / (2 n) (||W1||^2 + ||b1||^2 + ||W2||^2)``."""
    import torch

    W1, b1, W2 = params
    r = torch.relu(xb @ W1 + b1) @ W2 - yb
    decay = (W1 * W1).sum() + (b1 * b1).sum() + (W2 * W2).sum()
    return 0.5 * (r * r).sum() / xb.shape[0] + 0.5 * beta / n * decay


def penalty_batch_loss(u, xb, yb, db, beta: float, penalty: float, n: int):
    """Penalised convex objective / n on a batch, for u (d, 2PC) in ``solve``'s layout:
    ``(0.5 ||sum_p D_p X (v_p - w_p) - Y||^2 + penalty * hinge) / b + beta / n * sum_j ||u_j||``
    with ``hinge = sum relu(-(2 D_p - 1) X u_j)``. One GEMM ``xb @ u``; no
    ``D_p X`` and no (b, d, P) array."""
    import torch

    b, P, C = xb.shape[0], db.shape[1], yb.shape[1]
    z = (xb @ u).reshape(b, 2, P, C)
    r = ((z[:, 0] - z[:, 1]) * db[:, :, None]).sum(dim=1) - yb
    hinge = torch.relu(z * (1 - 2 * db)[:, None, :, None]).sum()
    groups = torch.linalg.vector_norm(u, dim=0).sum()  # zero subgradient at 0, no NaN
    return (0.5 * (r * r).sum() + penalty * hinge) / b + beta / n * groups


# -- backprop on the non-convex network -------------------------------------------------------
def train_mlp(
    X,
    Y,
    *,
    width: int,
    beta: float,
    epochs: int = 50,
    optimizer: str = "adam",
    lr: float | None = None,
    batch_size: int | None = None,
    momentum: float = 0.9,
    X_test=None,
    Y_test=None,
    seed: int = 0,
    dtype: str = "float32",
    classification: bool | None = None,
) -> TrainResult:
    """Train ``relu(X W1 + b1) W2`` by backprop on the convex program's objective.

    Parameters
    ----------
    X : (n, d) inputs, without a bias column (the network has its own ``b1``).
    Y : (n,) or (n, C) targets (+-1 or one-hot for classification).
    width : hidden neurons m (e.g. the number of active neurons of the convex solution).
    beta : weight decay: the objective is ``0.5 ||f(X) - Y||^2 + beta/2 (||W1||^2
        + ||b1||^2 + ||W2||^2)``, the convex program's objective as a function
        of the network.
    epochs, optimizer ("adam" or "sgd"), lr (default 1e-3 for Adam, 1e-2 for
        SGD, on objective / n), batch_size (None: full batch), momentum (SGD).
    X_test, Y_test : optional held-out data, evaluated every epoch.
    seed : seeds the initialisation (PyTorch's ``nn.Linear`` scheme) and the batch order.
    dtype : training precision; metrics are always evaluated in float64.
    classification : report accuracy; default: whether Y is +-1 / one-hot.
    """
    X, Y, test, lr = _check_common(X, Y, beta, epochs, optimizer, lr, batch_size, X_test, Y_test)
    check_positive("width", width, integer=True)
    torch, tdt, gen = _torch_setup(dtype, seed)
    classification = is_classification(Y) if classification is None else classification
    (n, d), C = X.shape, Y.shape[1]

    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return ((torch.rand(shape, generator=gen, dtype=tdt) * 2 - 1) * bound).requires_grad_()

    W1, b1, W2 = uniform((d, width), d), uniform((width,), d), uniform((width, C), width)
    Xt, Yt = torch.as_tensor(X, dtype=tdt), torch.as_tensor(Y, dtype=tdt)

    def batch_loss(idx):
        xb, yb = (Xt, Yt) if idx is None else (Xt[idx], Yt[idx])
        return mlp_batch_loss((W1, b1, W2), xb, yb, beta, n)

    def network():
        return ReLUNetwork(*(t.detach().double().numpy().copy() for t in (W1, W2, b1)))

    log = _train(
        [W1, b1, W2],
        batch_loss,
        lambda: _snapshot(network, X, Y, test, beta, classification),
        n,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        gen=gen,
        log={},
    )
    info = dict(method="mlp", width=width, beta=beta, optimizer=optimizer, lr=lr, batch_size=batch_size or n, seed=seed, dtype=dtype)
    return TrainResult(network=network(), history=log, info=info)


# -- the convex program with its cone constraints as a hinge penalty ---------------------------
def train_convex_penalty(
    X,
    Y,
    D,
    beta: float,
    *,
    epochs: int = 20,
    optimizer: str = "adam",
    lr: float | None = None,
    batch_size: int | None = None,
    penalty: float = 1.0,
    momentum: float = 0.9,
    X_test=None,
    Y_test=None,
    seed: int = 0,
    dtype: str = "float32",
    classification: bool | None = None,
) -> TrainResult:
    """Train the convex program by Adam or SGD with a hinge on the cone constraints.

    Minimises (divided by n)

        0.5 ||sum_p D_p X (v_pc - w_pc) - Y||^2 + beta sum_{p,c} (||v_pc|| + ||w_pc||)
        + penalty * sum_{p,c} sum_rows [relu(-(2D_p - 1) X v_pc) + relu(-(2D_p - 1) X w_pc)]

    over u = (v, w) in the layout of ``admmnn.solve`` ((d, 2PC), column
    ``h*P*C + p*C + c``). One GEMM ``X_batch @ u`` per step serves the fit and
    the hinge; neither ``D_p X`` nor an (n, d, P) array is formed. Any number of
    patterns P and any batch size work.

    X is used as given (append a ones column for a bias), as in ``admmnn.solve``.
    History adds, per epoch: ``convex_objective`` (the true, unpenalised
    objective of the convex model ``sum_p D_p X (v_p - w_p)``), ``hinge`` (the
    summed constraint violation) and ``violation`` (its relative size
    ``||min(G u, 0)|| / ||Y||``, ``certificate.objective``); ``objective`` and the accuracies are those
    of the recovered ReLU network, as for every other method.
    """
    X, Y, test, lr = _check_common(X, Y, beta, epochs, optimizer, lr, batch_size, X_test, Y_test)
    D = np.asarray(to_numpy(check_patterns(D, X.shape[0])), dtype=np.float64)
    check_positive("penalty", penalty)
    torch, tdt, gen = _torch_setup(dtype, seed)
    classification = is_classification(Y) if classification is None else classification
    (n, d), P, C = X.shape, D.shape[1], Y.shape[1]
    op = Operators(X, D, C)  # host float64 operators for the metrics

    u = (torch.randn((d, 2 * P * C), generator=gen, dtype=tdt) * (0.01 / np.sqrt(d))).requires_grad_()
    Xt, Yt, Dt = (torch.as_tensor(a, dtype=tdt) for a in (X, Y, D))

    def batch_loss(idx):
        xb, yb, db = (Xt, Yt, Dt) if idx is None else (Xt[idx], Yt[idx], Dt[idx])
        return penalty_batch_loss(u, xb, yb, db, beta, penalty, n)

    def u_host():
        return u.detach().double().numpy().copy()

    def snapshot():
        uh = u_host()
        out = _snapshot(lambda: recover_network(op, uh), X, Y, test, beta, classification)
        Xu = X @ uh
        z = Xu.reshape(n, 2, P, C)
        r = ((z[:, 0] - z[:, 1]) * D[:, :, None]).sum(axis=1) - Y
        g = op.signed(Xu)
        out["convex_objective"] = 0.5 * float(np.sum(r * r)) + beta * float(np.sum(op.group_norms(uh)))
        out["hinge"] = float(np.sum(np.maximum(-g, 0)))
        out["violation"] = float(certificate.cone_violation(np, g, Y))  # as ADMM's stop rule measures it
        return out

    log = _train(
        [u],
        batch_loss,
        snapshot,
        n,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        gen=gen,
        log={},
    )
    info = dict(method="convex-penalty", P=P, beta=beta, penalty=penalty, optimizer=optimizer, lr=lr, batch_size=batch_size or n, seed=seed, dtype=dtype)
    uh = u_host()
    return TrainResult(network=recover_network(op, uh), history=log, info=info, u=uh)


# -- ADMM with the same per-step metrics ----------------------------------------------------------
def train_admm(
    X,
    Y,
    D,
    beta: float,
    *,
    X_test=None,
    Y_test=None,
    classification: bool | None = None,
    **solve_options,
) -> TrainResult:
    """``admmnn.solve`` with the metrics of the other baselines recorded at every check.

    X (with its bias column), Y, D, beta and ``solve_options`` go to
    ``admmnn.solve`` unchanged (any backend). At every check the recovered
    network is evaluated on the host, as for ``train_mlp``: history holds
    ``iteration``, ``time`` (ADMM seconds, the metrics' own cost excluded),
    ``objective``, ``dual_bound``, ``rel_gap``, train/test loss and accuracy,
    and the cumulative ``seconds_<phase>`` of ``solve``. ``info["result"]`` is
    the ``SolveResult``; ``network`` its network.
    """

    Xh = np.asarray(to_numpy(as_array(X, "X")), dtype=np.float64)
    Yh = targets_2d(as_array(Y, "Y", ndims=(1, 2)))
    check_n(Xh.shape[0], Yh, "Y")
    test = None
    if (X_test is None) != (Y_test is None):
        raise ValueError("pass both X_test and Y_test, or neither")
    if X_test is not None:
        test = (np.asarray(to_numpy(as_array(X_test, "X_test")), dtype=np.float64), targets_2d(Y_test))
        if test[0].shape[1] != Xh.shape[1]:
            raise ValueError(f"X_test has {test[0].shape[1]} features but X has {Xh.shape[1]}")
        check_n(test[0].shape[0], test[1], "Y_test")
    classification = is_classification(Yh) if classification is None else classification
    user_callback = solve_options.pop("callback", None)
    op = Operators(Xh, np.asarray(to_numpy(D), dtype=np.float64), Yh.shape[1])  # host copy for the metrics
    log: dict = {}
    costs: list[float] = []  # seconds spent in each call of the metrics, taken off the clock

    def record(k, m, st):
        t0 = time.perf_counter()
        net = recover_network(op, np.asarray(to_numpy(st.v), dtype=np.float64))
        out = _snapshot(lambda: net, Xh, Yh, test, beta, classification)
        out.update(iteration=k, dual_bound=m["dual_bound"], rel_gap=m["rel_gap"])
        for key, val in out.items():
            log.setdefault(key, []).append(val)
        if user_callback is not None:
            user_callback(k, m, st)
        costs.append(time.perf_counter() - t0)

    res = solve(X, Y, D, beta, callback=record, **solve_options)
    h = res.history
    at = np.searchsorted(np.asarray(h["iteration"]), np.asarray(log.get("iteration", []), dtype=int))
    before = np.r_[0.0, np.cumsum(costs)][: len(at)]  # metrics already run when each check was timed
    log["time"] = list(np.asarray(h["time"])[at] - before)
    for phase in PHASES:
        log[f"seconds_{phase}"] = list(np.asarray(h[f"seconds_{phase}"])[at])
    info = dict(method="admm", solver=res.solver, beta=beta, status=res.status, result=res)
    return TrainResult(network=res.network, history=log, info=info)
