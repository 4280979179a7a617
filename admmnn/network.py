"""The two-layer ReLU network recovered from a convex solution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._backend import device_of, like, namespace, to_numpy


@dataclass
class ReLUNetwork:
    """``f(x) = relu(x W1 + b1) W2``.

    Attributes
    ----------
    W1 : array of shape (d, m)
        First-layer weights, one column per active neuron.
    W2 : array of shape (m, C)
        Second-layer weights.
    b1 : array of shape (m,) or None
        First-layer biases, or None when the data carry their own bias column.
    """

    W1: object
    W2: object
    b1: object = None

    @property
    def width(self) -> int:
        """Number m of hidden neurons."""
        return int(self.W1.shape[1])

    def hidden(self, X):
        """Hidden activations relu(X W1 + b1), shape (n, m)."""
        xp = namespace(X, self.W1)
        z = X @ self.W1
        if self.b1 is not None:
            z = z + self.b1
        return xp.maximum(z, 0)

    def predict(self, X):
        """Network output (n, C) for inputs X (n, d)."""
        return self.hidden(X) @ self.W2

    def to_torch(self):
        """A ``torch.nn.Sequential(Linear(d, m), ReLU(), Linear(m, C, bias=False))``
        with these weights (float dtype and device of the weights if they are torch)."""
        import torch

        W1, W2 = (torch.as_tensor(to_numpy(w)) for w in (self.W1, self.W2))
        first = torch.nn.Linear(W1.shape[0], W1.shape[1], bias=self.b1 is not None, dtype=W1.dtype)
        second = torch.nn.Linear(W2.shape[0], W2.shape[1], bias=False, dtype=W2.dtype)
        with torch.no_grad():
            first.weight.copy_(W1.T)
            if self.b1 is not None:
                first.bias.copy_(torch.as_tensor(to_numpy(self.b1)))
            second.weight.copy_(W2.T)
        return torch.nn.Sequential(first, torch.nn.ReLU(), second)

    def to_jax(self):
        """``(f, params)``: a pure JAX function ``f(params, X) -> (n, C)`` and its
        parameters ``{"W1", "b1", "W2"}`` as JAX arrays (``f`` can be jitted)."""
        import jax.numpy as jnp

        params = {"W1": jnp.asarray(to_numpy(self.W1)), "W2": jnp.asarray(to_numpy(self.W2))}
        params["b1"] = jnp.asarray(to_numpy(self.b1)) if self.b1 is not None else jnp.zeros(params["W1"].shape[1])

        def f(params, X):
            return jnp.maximum(X @ params["W1"] + params["b1"], 0) @ params["W2"]

        return f, params

    def penalty(self, beta: float) -> float:
        """Weight decay ``beta/2 (||W1||^2 + ||b1||^2 + ||W2||^2)`` (equals the group penalty)."""
        xp = namespace(self.W1)
        total = xp.sum(self.W1**2) + xp.sum(self.W2**2)
        if self.b1 is not None:
            total = total + xp.sum(self.b1**2)
        return 0.5 * beta * float(total)


def recover_network(op, v, bias: bool = False) -> ReLUNetwork:
    """Neurons from the non-zero groups of ``v`` (d, 2PC).

    Group (h, p, c) with ``||v_j|| > 0`` becomes a neuron with input weights
    ``v_j / sqrt(||v_j||)`` and output weight ``(-1)^h sqrt(||v_j||)`` on column c,
    so ``relu(x W1_j) W2_j = (-1)^h relu(x v_j)`` and the weight decay of the
    network equals the group penalty. With ``bias=True`` the last row of v is
    the bias and becomes ``b1``.
    """
    xp = op.xp
    norms = op.group_norms(v)
    keep = np.flatnonzero(to_numpy(norms) > 0)
    P, C = op.P, op.C
    idx = xp.asarray(keep, device=device_of(v))
    cols = xp.take(v, idx, axis=1)
    root = xp.sqrt(xp.take(norms, idx, axis=0))
    W1 = cols / root
    h = keep // (P * C)
    c = keep % C
    W2_np = np.zeros((keep.size, C))
    W2_np[np.arange(keep.size), c] = np.where(h == 0, 1.0, -1.0)
    W2 = like(W2_np, v) * root[:, None]
    if bias:
        return ReLUNetwork(W1[:-1, :], W2, W1[-1, :])
    return ReLUNetwork(W1, W2)

