"""The few places where NumPy, PyTorch and JAX differ.

Everything else in admmnn is written against the array API standard through
``array_api_compat``; this module holds what the standard lacks: linear algebra
beyond it, conversion between libraries, device synchronisation and timing.
Solver code never branches on the backend name; it calls these helpers.
"""
from __future__ import annotations

import time

import numpy as np
from array_api_compat import array_namespace, is_jax_array, is_numpy_array, is_torch_array
from array_api_compat import device as _device

BACKENDS = ("numpy", "torch", "jax")


def namespace(*arrays):
    """The array-API namespace of ``arrays`` (NumPy, torch or JAX)."""
    return array_namespace(*arrays)


def device_of(x, replicated: bool = False):
    """The device of ``x`` (for a JAX array sharded over several devices, its
    sharding; None for a traced value). With ``replicated``, such a sharding is
    replaced by one that keeps a whole copy on every device of its mesh: the
    placement for arrays of another shape, e.g. the (d, 2PC) weights of
    row-sharded data (``admmnn.sharding``)."""
    dev = _device(x)
    if replicated and is_jax_array(x) and len(x.sharding.device_set) > 1:
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(x.sharding.mesh, PartitionSpec())
    return dev


def backend_of(x) -> str:
    """Name of the library that owns array ``x``: "numpy", "torch" or "jax"."""
    if is_torch_array(x):
        return "torch"
    if is_jax_array(x):
        return "jax"
    return "numpy"


def to_numpy(x) -> np.ndarray:
    """A host NumPy copy (or view) of any supported array."""
    if is_numpy_array(x) or isinstance(x, (np.generic, float, int)):
        return np.asarray(x)
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def asarray(x, backend: str = "numpy", dtype: str | None = "float64", device=None):
    """Convert ``x`` (any supported array or a NumPy array) to ``backend``'s array
    of ``dtype`` ("float32", "float64", or None to keep it) on ``device``."""
    if backend == "numpy":
        return np.asarray(to_numpy(x), dtype=dtype)
    if backend == "torch":
        import torch

        if is_torch_array(x):
            return x.to(device=device, dtype=getattr(torch, dtype) if dtype else None)
        return torch.as_tensor(np.asarray(to_numpy(x), dtype=dtype), device=device)
    if backend == "jax":
        import jax

        if dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        arr = jax.numpy.asarray(np.asarray(to_numpy(x), dtype=dtype))
        if device is not None:
            arr = jax.device_put(arr, jax.devices(device)[0] if isinstance(device, str) else device)
        return arr
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def like(x_np: np.ndarray, ref):
    """Convert host array ``x_np`` to the library, dtype and device of ``ref``."""
    xp = array_namespace(ref)
    if is_torch_array(ref):
        import torch

        return torch.as_tensor(np.asarray(x_np), dtype=ref.dtype, device=ref.device)
    return xp.asarray(np.asarray(x_np), dtype=ref.dtype)


def as_float64(x):
    """``x`` in float64 on its own device; a JAX array without 64-bit support
    enabled (``jax_enable_x64``) becomes a host NumPy float64 array instead."""
    if is_torch_array(x):
        import torch

        return x.to(dtype=torch.float64)
    if is_jax_array(x):
        import jax

        if jax.config.jax_enable_x64:
            return x.astype(jax.numpy.float64)
    return np.asarray(to_numpy(x), dtype=np.float64)


def dtype_name(x) -> str:
    """"float32" or "float64" for a floating array ``x``."""
    return str(x.dtype).replace("torch.", "")


def eigh(a):
    """Eigenvalues (ascending) and eigenvectors of symmetric ``a``."""
    if is_numpy_array(a):
        import scipy.linalg

        return scipy.linalg.eigh(a, driver="evd", check_finite=False)
    xp = array_namespace(a)
    return tuple(xp.linalg.eigh(a))


def spd_inverse(a):
    """Inverse of a symmetric positive definite matrix ``a`` via Cholesky."""
    if is_numpy_array(a):
        import scipy.linalg

        c = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
        return scipy.linalg.cho_solve(c, np.eye(a.shape[0], dtype=a.dtype), check_finite=False)
    if is_torch_array(a):
        import torch

        return torch.cholesky_inverse(torch.linalg.cholesky(a))
    xp = array_namespace(a)
    return xp.linalg.inv(a)


def syrk(a, scale=None):
    """``(a * scale) @ (a * scale).T`` for a tall (n, k) ``a`` and optional
    column weights ``scale`` (k,): the (n, n) Gram matrix of the rows, exactly
    symmetric (NumPy dispatches ``y @ y.T`` to BLAS SYRK, half the flops)."""
    y = a if scale is None else a * scale
    n = y.shape[0]
    if is_numpy_array(y) and n > _SYRK_MAX_N:
        # OpenBLAS 0.3.31 (NumPy 2.4 and SciPy wheels) segfaults in dsyrk at
        # n = 20000, k = 785 (n = 10000 works): above _SYRK_MAX_N, build the lower triangle by row blocks of GEMMs
        # (same flops as SYRK) and mirror each block into the upper triangle.
        out = np.empty((n, n), dtype=y.dtype)
        for i in range(0, n, _SYRK_BLOCK):
            j = min(i + _SYRK_BLOCK, n)
            blk = y[i:j] @ y[:j].T
            out[i:j, :j] = blk
            out[:i, i:j] = blk[:, :i].T
        return out
    return y @ y.T


_SYRK_BLOCK = 2048
_SYRK_MAX_N = 12288


def hadamard_(a, b):
    """``a * b`` elementwise, overwriting ``a`` where the library allows it
    (NumPy, torch); JAX returns a new array. Saves one n x n temporary."""
    if is_numpy_array(a):
        return np.multiply(a, b, out=a)
    if is_torch_array(a):
        return a.mul_(b)
    return a * b


def cho_factor_shifted(m, shift: float):
    """Lower Cholesky factor of ``m + shift * I`` for symmetric ``m``, leaving
    ``m`` untouched (one n x n copy). Raises ``numpy.linalg.LinAlgError`` when
    the shifted matrix is not numerically positive definite (under JAX, where
    the factorisation returns NaN instead, by one host read of a scalar).

    On NumPy the factor is a Fortran-ordered LAPACK ``potrf`` result whose upper
    triangle is garbage: pass it only to ``cho_solve``."""
    n = m.shape[0]
    if is_numpy_array(m):
        import scipy.linalg

        a = m.copy()
        a.flat[:: n + 1] += shift
        if n > _SYRK_MAX_N:
            return _blocked_cholesky(a)
        # a is symmetric, so a.T (Fortran-ordered, no copy) is the same matrix and
        # LAPACK factors it in place
        return scipy.linalg.cho_factor(a.T, lower=True, overwrite_a=True, check_finite=False)[0]
    xp = array_namespace(m)
    eye = xp.eye(n, dtype=m.dtype, device=device_of(m))
    if is_torch_array(m):
        import torch

        L, info = torch.linalg.cholesky_ex(m + shift * eye)
        if int(info) != 0:
            raise np.linalg.LinAlgError(f"matrix not positive definite (leading minor {int(info)})")
        return L
    L = xp.linalg.cholesky(m + shift * eye)
    if not bool(xp.all(xp.isfinite(L[-1, -1]))):
        raise np.linalg.LinAlgError("matrix not positive definite (Cholesky returned NaN)")
    return L


def _blocked_cholesky(a, block: int = _SYRK_BLOCK):
    """In-place lower Cholesky factor of the symmetric NumPy array ``a`` by blocks
    (right-looking): LAPACK potrf on each diagonal block, a triangular solve for
    the panel below it, and the trailing lower triangle updated by row blocks of
    GEMMs. The same flops as one potrf; needed because the multithreaded potrf of
    OpenBLAS 0.3.31 (NumPy 2.4 and SciPy wheels) segfaults at n = 20 000 (its
    internal SYRK, as in ``syrk``). The upper triangle is left as garbage."""
    import scipy.linalg

    n = a.shape[0]
    for k in range(0, n, block):
        e = min(k + block, n)
        a[k:e, k:e] = scipy.linalg.cholesky(a[k:e, k:e], lower=True, check_finite=False)
        if e == n:
            break
        a[e:, k:e] = scipy.linalg.solve_triangular(a[k:e, k:e], a[e:, k:e].T, lower=True, check_finite=False).T
        for i in range(e, n, block):
            j = min(i + block, n)
            a[i:j, e:j] -= a[i:j, k:e] @ a[e:j, k:e].T
    return a


def cho_solve(L, b):
    """Solution x of ``(L L^T) x = b`` for a factor from ``cho_factor_shifted``."""
    if is_numpy_array(L):
        import scipy.linalg

        # two triangular solves: for few right-hand sides (trsv) 2x faster than
        # LAPACK potrs (measured at n = 5000), and faster than two products with
        # n x n eigenvectors
        y = scipy.linalg.solve_triangular(L, b, lower=True, check_finite=False)
        return scipy.linalg.solve_triangular(L, y, lower=True, trans="T", overwrite_b=True, check_finite=False)
    if is_torch_array(L):
        import torch

        return torch.cholesky_solve(b, L, upper=False)
    import jax.scipy.linalg

    return jax.scipy.linalg.cho_solve((L, True), b)


def is_async(x) -> bool:
    """True when work on ``x`` is queued asynchronously (CUDA torch, any JAX array),
    so timing a phase needs a synchronisation."""
    return (is_torch_array(x) and x.is_cuda) or is_jax_array(x)


def compiles(x) -> bool:
    """True when the backend of ``x`` traces and compiles whole functions (JAX)."""
    return is_jax_array(x)


# --- pytrees and jit ------------------------------------------------------
_PYTREES: list[type] = []
_REGISTERED: set[type] = set()
_JITTED: dict = {}


def pytree(*children: str, static: tuple[str, ...] | None = None):
    """Class decorator: under JAX, instances (and instances of subclasses) flatten
    to the attributes named in ``children`` (arrays, Python scalars, None or
    nested pytrees). With ``static=None`` every other attribute except ``info``
    is static (and must be hashable); with a tuple, only those attributes are
    kept (static) and the rest are dropped from the traced copy. Nothing is
    imported until JAX is used."""

    def wrap(cls):
        cls._pytree_children = children
        cls._pytree_static = static
        _PYTREES.append(cls)
        return cls

    return wrap


def _subclasses(cls):
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def _register_pytrees():
    import jax

    for root in _PYTREES:
        for cls in _subclasses(root):
            if cls in _REGISTERED:
                continue

            def flatten(obj, cls=cls):
                kids = tuple(getattr(obj, name) for name in cls._pytree_children)
                if cls._pytree_static is None:
                    static = tuple(
                        (k, v) for k, v in sorted(vars(obj).items()) if k not in cls._pytree_children and k != "info"
                    )
                else:
                    static = tuple((k, getattr(obj, k)) for k in cls._pytree_static)
                return kids, static

            def unflatten(static, kids, cls=cls):
                obj = cls.__new__(cls)
                for name, value in zip(cls._pytree_children, kids):
                    setattr(obj, name, value)
                for name, value in static:
                    setattr(obj, name, value)
                if cls._pytree_static is None:
                    obj.info = {}
                return obj

            jax.tree_util.register_pytree_node(cls, flatten, unflatten)
            _REGISTERED.add(cls)


def jit(fn, ref, static_argnames=()):
    """``fn`` compiled once per input shape when ``ref`` is a JAX array, else ``fn``.

    Arguments of compiled functions may be arrays, ``pytree`` objects, tuples
    of them, or Python scalars (traced, so a new value does not recompile).
    The compiled wrapper is cached per function, so later calls (other solves
    of the same shapes) reuse its compilations.
    """
    if not compiles(ref):
        return fn
    import jax

    _register_pytrees()
    key = (fn, tuple(static_argnames))
    if key not in _JITTED:
        _JITTED[key] = jax.jit(fn, static_argnames=static_argnames)
    return _JITTED[key]


def while_loop(cond, body, state, ref):
    """``while cond(state): state = body(state)``; a ``lax.while_loop`` under JAX,
    so compiled code has no Python branch on traced values."""
    if compiles(ref):
        import jax

        return jax.lax.while_loop(cond, body, state)
    while bool(cond(state)):
        state = body(state)
    return state


def fori_loop(lower: int, upper: int, body, state, ref):
    """``for i in range(lower, upper): state = body(i, state)``; a ``lax.fori_loop``
    under JAX (one traced body, whatever the trip count)."""
    if compiles(ref):
        import jax

        return jax.lax.fori_loop(lower, upper, body, state)
    for i in range(lower, upper):
        state = body(i, state)
    return state


def switch(index, branches, operand, ref):
    """``branches[index](operand)``; a ``lax.switch`` under JAX, so that a traced
    ``index`` picks among branches of different static shapes (every branch must
    return the same structure of shapes)."""
    if compiles(ref):
        import jax

        return jax.lax.switch(index, branches, operand)
    return branches[int(index)](operand)


def permutation(n: int, seed: int, counters, ref):
    """A random permutation of ``range(n)`` determined by the integer ``seed`` and
    the integer ``counters`` (e.g. an iteration and a sweep number). Under JAX the
    counters may be traced (``jax.random`` keys folded with them), so compiled code
    draws a fresh order at every call without a host round trip; elsewhere a NumPy
    generator seeded with ``[seed, *counters]`` draws it on the host."""
    if compiles(ref):
        import jax

        key = jax.random.key(seed)
        for c in counters:
            key = jax.random.fold_in(key, c)
        return jax.random.permutation(key, n)
    return np.random.default_rng([int(seed), *(int(c) for c in counters)]).permutation(n)


def as_index(i):
    """A 0-d array (any dtype, possibly traced under JAX) as an index of its library."""
    if is_jax_array(i):
        return i.astype("int32")
    if is_torch_array(i):
        return i.long()
    return int(i)


def set_index(a, index, value):
    """``a`` with ``a[index] = value``: in place on NumPy and torch, a functional
    update (``a.at[index].set``) under JAX. ``index`` may be traced under JAX."""
    if is_jax_array(a):
        return a.at[index].set(value)
    a[index] = value
    return a


def is_traced(x) -> bool:
    """True while JAX traces ``x`` (inside ``jit``, ``lax.while_loop``...): its
    value cannot be read on the host."""
    if not is_jax_array(x):
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def host_memory_available() -> int:
    """Bytes of host memory currently available (``MemAvailable``; a guess of 4 GiB if unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def free_memory(ref=None) -> tuple[int, str]:
    """Free bytes where array ``ref`` lives, and a name for that place: the GPU for
    CUDA torch (``torch.cuda.mem_get_info``) or accelerator JAX arrays (the device's
    ``memory_stats``), the host otherwise."""
    if ref is not None and is_torch_array(ref) and ref.is_cuda:
        import torch

        return int(torch.cuda.mem_get_info(ref.device)[0]), f"free on {ref.device}"
    if ref is not None and is_jax_array(ref):
        try:
            dev = next(iter(ref.devices()))
            stats = dev.memory_stats() if dev.platform != "cpu" else None
        except Exception:  # pragma: no cover - depends on the JAX build
            stats = None
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), f"free on {dev}"
    return host_memory_available(), "of host memory available"


def is_gpu(backend: str, device) -> bool:
    """Whether ``device`` (a torch or JAX device or its name, None for the default)
    of ``backend`` is a GPU."""
    if device is None:
        return False
    if backend == "torch":
        import torch

        return torch.device(device).type == "cuda"
    if backend == "jax":
        platform = getattr(device, "platform", None)
        return (platform if platform is not None else str(device).split(":")[0]) in ("gpu", "cuda", "rocm")
    return False


def synchronize(x) -> None:
    """Wait until the device that holds ``x`` has finished queued work."""
    if is_torch_array(x) and x.is_cuda:
        import torch

        torch.cuda.synchronize(x.device)
    elif is_jax_array(x):
        x.block_until_ready()


class Timer:
    """Accumulates wall seconds per phase; with ``sync`` it waits for the device
    first (a host-device synchronisation, so only when asked)."""

    def __init__(self, ref):
        self.ref = ref
        self.seconds: dict[str, float] = {}

    def __call__(self, phase: str, start: float, sync: bool = True) -> float:
        if sync:
            synchronize(self.ref)
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - start
        return now


def to_float(x) -> float:
    """A Python float from a 0-d array of any backend (reads it back to the host)."""
    return float(to_numpy(x))


# -- small dense linear algebra (r x r factorisations, thin N x r factors) ------


def cholesky(a):
    """Lower Cholesky factor of a symmetric positive definite matrix ``a``."""
    if is_numpy_array(a):
        import scipy.linalg

        return scipy.linalg.cholesky(a, lower=True, check_finite=False)
    return array_namespace(a).linalg.cholesky(a)


def solve_triangular(a, b, lower: bool = True):
    """Solution x of ``a x = b`` for triangular ``a`` (b may have several columns)."""
    if is_numpy_array(a):
        import scipy.linalg

        return scipy.linalg.solve_triangular(a, b, lower=lower, check_finite=False)
    if is_torch_array(a):
        import torch

        return torch.linalg.solve_triangular(a, b, upper=not lower)
    import jax.scipy.linalg

    return jax.scipy.linalg.solve_triangular(a, b, lower=lower)


def cholesky_or_nan(a):
    """Lower Cholesky factor of symmetric ``a``, or an array of NaN where ``a`` is
    not numerically positive definite (what JAX returns; NumPy and torch are made
    to agree), so that a compiled loop can test the result instead of catching."""
    if is_numpy_array(a):
        try:
            return cholesky(a)
        except np.linalg.LinAlgError:
            return np.full_like(a, np.nan)
    if is_torch_array(a):
        import torch

        L, info = torch.linalg.cholesky_ex(a)
        ok = (info == 0)[..., None, None]  # one flag per matrix of a batch
        return torch.where(ok, L, torch.full_like(L, float("nan")))  # no host read
    return array_namespace(a).linalg.cholesky(a)


def thin_svd(a):
    """``U, s`` of the thin SVD of a tall matrix ``a`` (s descending)."""
    if is_numpy_array(a):
        import scipy.linalg

        u, s, _ = scipy.linalg.svd(a, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        return u, s
    u, s, _ = array_namespace(a).linalg.svd(a, full_matrices=False)
    return u, s


def thin_qr(a):
    """``Q, R`` of the reduced QR factorisation of a tall matrix ``a``."""
    if is_numpy_array(a):
        import scipy.linalg

        return scipy.linalg.qr(a, mode="economic", check_finite=False)
    return tuple(array_namespace(a).linalg.qr(a))


def gaussian(shape, ref, rng):
    """A standard Gaussian array of ``shape`` drawn on the host from NumPy
    generator ``rng`` (so every backend sees the same numbers), in the library,
    dtype and device of ``ref``."""
    return like(rng.standard_normal(shape), ref)


def add_diagonal_blocks(K, blocks):
    """``K + blockdiag(blocks)`` for K (C, P b, P b) and blocks (P, C, b, b): block p of
    column c is added on K[c]'s p-th diagonal block (in place where the library allows it)."""
    P, C, b = blocks.shape[0], blocks.shape[1], blocks.shape[2]
    idx = np.arange(P)
    if is_jax_array(K):
        K5 = K.reshape(C, P, b, P, b)
        return K5.at[:, idx, :, idx, :].add(blocks).reshape(K.shape)
    if is_torch_array(K):
        import torch

        idx = torch.as_tensor(idx, device=K.device)
    K5 = K.reshape(C, P, b, P, b)  # a view: the advanced indices put the (P, C) axes first
    K5[:, idx, :, idx, :] += blocks
    return K
