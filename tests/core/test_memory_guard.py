"""The memory guard: solver="auto" avoids what does not fit, solver="exact" refuses before it
allocates, and the free memory is read from the device of the data."""
import pytest

import admmnn
from admmnn import ustep
from admmnn.memory import InsufficientMemoryError
from runs import run


def test_memory_guard_auto_picks_matrix_free():
    assert run(10, solver="auto").solver == "exact"
    budget = admmnn.memory.iterate_bytes(60, 6, 12) + ustep.exact_bytes(60, 6) - 1
    res = run(10, solver="auto", memory_budget=budget)
    assert res.solver != "exact" and res.solver == res.info["auto"]["solver"]
    assert res.info["auto"]["passed"][0][0] == "exact" and "> budget" in res.info["auto"]["reason"]
    assert run(10, solver="auto", memory_budget=budget + 1).solver == "exact"


def test_memory_guard_auto_without_matrix_free_solver(monkeypatch):
    monkeypatch.setattr(ustep, "SOLVERS", {"exact": ustep.ExactSolver})
    with pytest.raises(InsufficientMemoryError, match="no matrix-free solver is installed"):
        run(10, solver="auto", memory_budget=60_000)


def test_memory_guard_exact_refuses_before_allocating(monkeypatch):
    built = []
    monkeypatch.setattr(ustep.ExactSolver, "__init__", lambda self, *a, **k: built.append(1))
    with pytest.raises(MemoryError, match=r"solver='exact' needs about 90\.56 KiB for its n x n factor \(n=60\).*"
                       r"nothing was allocated.*solver='auto'"):
        run(10, solver="exact", memory_budget=50_000)
    # without a budget, the free memory of the device (here: the host) is the limit
    monkeypatch.setattr(admmnn.memory, "free_bytes", lambda ref=None: (40_000, "of host memory available"))
    with pytest.raises(ValueError, match="only 39.06 KiB are of host memory available"):
        run(10, solver="exact")
    assert not built


def test_memory_guard_iterates(monkeypatch):
    with pytest.raises(InsufficientMemoryError, match="the ADMM iterates alone need about"):
        run(10, solver="exact", memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        run(10, memory_budget=-1)


def test_memory_guard_reads_gpu_memory_for_cuda_arrays(monkeypatch):
    torch = pytest.importorskip("torch")

    class CudaArray:  # what the guard looks at on a CUDA tensor
        is_cuda, device = True, "cuda:0"

    asked = []
    monkeypatch.setattr(admmnn._backend, "is_torch_array", lambda x: isinstance(x, CudaArray))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: asked.append(device) or (50_000, 80 << 30))
    assert admmnn.memory.free_bytes(CudaArray()) == (50_000, "free on cuda:0") and asked == ["cuda:0"]
    with pytest.raises(InsufficientMemoryError, match="only 48.83 KiB are free on cuda:0"):
        admmnn.memory.resolve_solver("exact", 60, 6, 12, 8, None, CudaArray())
    assert admmnn.memory.resolve_solver("exact", 10, 6, 12, 8, None, CudaArray()).solver == "exact"
