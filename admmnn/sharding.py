"""One solve over the devices of a JAX mesh: the rows of the data are sharded.

``solve(X, Y, D, beta, mesh=Mesh(devices, ("data",)))`` splits the rows of X (n, d),
D (n, P) and Y (n, C) over the mesh axis "data" (and replicates them over any
other axis). The slack s, its dual nu and G u (n, 2PC) follow the rows; the
weights u, v and their dual lam (d, 2PC) are replicated. Nothing else changes in
the solver: JAX's compiler propagates these placements through every jitted
function (GSPMD), so ``F u`` and ``G u`` are local GEMMs, and every sum over rows
(``F^T r``, ``G^T s``, ``X^T X``, the Nyström sketch, the certificate's norms) is
a local GEMM followed by one all-reduce that the compiler inserts
(``admmnn.experiments.hlo.collectives`` counts them in a compiled program).

Padding. n is padded up to a multiple of the mesh's "data" size with zero rows of
X, D and Y. This changes nothing: a row with ``X_i = 0`` adds nothing to ``F^T r``,
``G^T s`` or ``X^T X``, and its ``(F u)_i``, ``(G u)_i`` and ReLU outputs are 0
for every u; with ``Y_i = 0`` its residual is 0, with ``D_i = 0`` it is a dead row
of the dual bound whose term ``0.5 Y_i^2`` is 0. Its slack and dual start at 0 and
stay 0 (``s = max(G u + nu, 0) = max(nu, 0)``, ``nu += gamma (G u - s) = 0``), so
the iterates on the real rows, the objective, the cone violation and the dual
bound are exactly those of the unpadded problem, and ``solve`` drops the padded
rows from the state it returns. (The residual stopping rule counts only the real
rows: ``Operators.n_pad``.)

Solvers. Every matrix-free u-step runs sharded ("cg", "pcg-jacobi", the Nyström
ones, RBCD). The exact solver is refused with a mesh: its Woodbury factor is an
n x n Cholesky factor, which is dense in both dimensions, so row-sharding it
would need a distributed triangular solve (n^2 bytes, and communication at every
u-step) exactly where the mesh is wanted, when n is too large for one device.
``solver="auto"`` follows the rules of ``ustep.auto`` (the exact one does not fire
on a mesh), with one device's rows and memory. The active-set polish is host
NumPy code, so it is off with a mesh. Anderson acceleration is off by default with a mesh:
its memory is one flat vector of all the iterates, (d + n) 2PC entries, and the
concatenation of replicated weights with row-sharded slacks makes the compiler
all-gather the slack and its dual on every device at every iteration (counted by
``benchmarks/sharded.py``); ``anderson=5`` still works, at that cost.
"""
from __future__ import annotations

from ._backend import backend_of
from .ustep import SOLVERS, auto

#: the mesh axis the rows are split over
AXIS = "data"


def check_mesh(mesh, *arrays) -> int:
    """Validate ``mesh`` for row-sharded arrays; returns its "data" size.

    Raises TypeError when ``mesh`` is not a ``jax.sharding.Mesh`` or the arrays are
    not JAX arrays, and ValueError when it has no "data" axis."""
    try:
        from jax.sharding import Mesh
    except ImportError:  # pragma: no cover - JAX missing
        raise TypeError("mesh= needs JAX (pip install 'admmnn[jax]')") from None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh with a {AXIS!r} axis or None, got {type(mesh).__name__}")
    if AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {AXIS!r} to split the rows over; its axes are {mesh.axis_names}")
    others = sorted({backend_of(a) for a in arrays} - {"jax"})
    if others:
        raise TypeError(f"mesh= shards JAX arrays, but got {others} arrays; pass JAX arrays "
                        "(jax.numpy.asarray(X)) or use backend='jax'")
    return int(mesh.shape[AXIS])


def check_solver(solver: str) -> str:
    """``solver`` for a mesh: "exact" is refused (``ustep.auto.check_mesh``); "auto"
    stays "auto", for ``ustep.auto.choose`` to decide with the problem's sizes."""
    return auto.check_mesh(solver, SOLVERS)


def row_sharding(mesh):
    """Rows split over the "data" axis, columns whole."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(AXIS, None))


def replicated(mesh):
    """A whole copy on every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def padding(n: int, mesh) -> int:
    """Zero rows that make n a multiple of the mesh's "data" size."""
    return -n % int(mesh.shape[AXIS])


def shard_rows(mesh, *arrays, pad: int = 0):
    """The (n, k) ``arrays`` padded with ``pad`` zero rows and sharded by rows over ``mesh``.

    An array spread over several processes (``jax.distributed``) is not padded
    here: build it with ``admmnn.distributed.global_rows``, which pads."""
    import jax
    import jax.numpy as jnp

    rows = row_sharding(mesh)
    out = []
    for a in arrays:
        if pad:
            if not a.is_fully_addressable:
                raise ValueError(f"mesh: arrays spread over several processes need a row count divisible by the "
                                 f"mesh's {AXIS!r} size; build them with admmnn.distributed.global_rows")
            a = jnp.pad(a, ((0, pad), (0, 0)))
        out.append(jax.device_put(a, rows))
    return out


def place_state(state, mesh, pad: int = 0):
    """An ``ADMMState`` (e.g. a warm start) on ``mesh``: its (n, 2PC) fields padded
    with ``pad`` zero rows and sharded by rows, its (d, 2PC) fields replicated."""
    import jax

    rows = shard_rows(mesh, state.s, state.nu, state.Gu, pad=pad)
    whole = [jax.device_put(a, replicated(mesh)) for a in (state.u, state.v, state.lam)]
    return state._replace(u=whole[0], v=whole[1], lam=whole[2], s=rows[0], nu=rows[1], Gu=rows[2])


def drop_padding(state, pad: int):
    """The state without its last ``pad`` rows of s, nu and G u (what the user sees)."""
    if not pad:
        return state
    n = state.s.shape[0] - pad
    return state._replace(s=state.s[:n], nu=state.nu[:n], Gu=state.Gu[:n])


__all__ = ["check_mesh", "check_solver", "row_sharding", "replicated", "padding", "shard_rows", "place_state",
           "drop_padding", "AXIS"]
