"""The collective operations (all-reduce, all-gather, ...) of a compiled XLA
program, read from its HLO text: how ``benchmarks/sharded.py`` and the mesh tests
count what a row-sharded solve (``admmnn.sharding``) communicates.

    hlo = jax.jit(f).lower(*args).compile().as_text()
    for c in collectives(hlo): ...   # kind, bytes, shapes, in_loop
"""
from __future__ import annotations

import re

_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_OP = re.compile(r"=\s*(.+?)\s+(" + "|".join(_COLLECTIVES) + r")(?:-start)?\(")
_SHAPE = re.compile(r"\b(pred|[fsu]\d+|bf16)\[([\d,]*)\]")
_CALLS = re.compile(r"(?:body|to_apply|calls|condition|branch_computations)=\{?([%\w.\-, ]+)\}?")
_BODY = re.compile(r"body=%?([\w.\-]+)")
_BYTES = {"pred": 1, "bf16": 2}


def _nbytes(kind: str, dims: str) -> int:
    size = _BYTES.get(kind, int(kind[1:]) // 8 if kind[1:].isdigit() else 8)
    for d in filter(None, dims.split(",")):
        size *= int(d)
    return size


def collectives(hlo_text: str) -> list[dict]:
    """The collective operations of a compiled program's HLO text
    (``jitted.lower(...).compile().as_text()``).

    Returns one dict per operation: ``kind`` ("all-reduce", ...), ``bytes`` (of its
    result on one device), ``shapes`` (its result's array types) and ``in_loop``
    (True when it sits in the body of a ``while`` loop, i.e. runs once per loop
    iteration rather than once per call)."""
    comps: dict[str, list[str]] = {}
    name = None
    for line in hlo_text.splitlines():
        head = _COMPUTATION.match(line)
        if head and "=" not in line.split("{")[0].split("(")[0]:
            name = head.group(1)
            comps[name] = []
        elif name is not None:
            comps[name].append(line)
    called = {c: {x.strip().lstrip("%") for m in _CALLS.finditer("\n".join(body)) for x in m.group(1).split(",")}
              for c, body in comps.items()}
    looped: set[str] = set()
    todo = [m.group(1) for body in comps.values() for line in body for m in _BODY.finditer(line)]
    while todo:
        c = todo.pop()
        if c in looped or c not in comps:
            continue
        looped.add(c)
        todo.extend(called.get(c, ()))
    out = []
    for c, body in comps.items():
        for line in body:
            m = _OP.search(line)
            if m is None:
                continue
            shapes = [f"{k}[{dims}]" for k, dims in _SHAPE.findall(m.group(1))]
            nbytes = sum(_nbytes(k, dims) for k, dims in _SHAPE.findall(m.group(1)))
            out.append({"kind": m.group(2), "bytes": nbytes, "shapes": shapes, "in_loop": c in looped})
    return out


__all__ = ["collectives"]
