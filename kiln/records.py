"""What the back end did with each graph it was given, from either front end (Kiln's capture or
TorchDynamo): compiled, with how many kernels and ATen fallback ops, or run eagerly, and why.
`kiln explain` lists these next to capture's own records."""
from __future__ import annotations

import re
import threading
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import torch.fx as fx

from kiln import prims

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


class OpFallback(NamedTuple):
    """An ATen op run as is inside a compiled graph (a `kiln.fallback` node), why, and how often."""
    op: str
    reason: str
    count: int

    def __str__(self) -> str:
        return f"{self.op}{f' x{self.count}' if self.count > 1 else ''}: {self.reason}"


def op_fallbacks(prims_gm: fx.GraphModule) -> tuple[OpFallback, ...]:
    """The graph's op-level fallbacks, one per (op, reason), in graph order."""
    counts = Counter((str(n.args[0]), prims.fallback_reason(n)) for n in prims.fallback_nodes(prims_gm))
    return tuple(OpFallback(op, reason, count) for (op, reason), count in counts.items())


@dataclass(frozen=True)
class BackendRecord:
    graph: weakref.ref                # the GraphModule the front end handed over
    function: str                     # the user function the graph's code came from, if known
    location: str                     # "file:line" of the graph's first op, if known
    ops: int
    compiled: bool
    kernels: int = 0
    fallbacks: tuple[OpFallback, ...] = ()  # ATen ops run as they are inside the compiled graph
    reason: str | None = None         # why the graph runs eagerly
    split: bool = False               # split at a data-dependent op; its parts have records of their own
    backward_kernels: int | None = None  # a training graph: kernels of its backward (`kernels`: its forward's)
    per_size: bool = False            # symbolic sizes: compiled per concrete size; versions have records of their own
    dynamic: bool = False             # symbolic sizes: one size-generic build (kiln/dynamic.py)

    @property
    def fallback_ops(self) -> tuple[str, ...]:
        return tuple(sorted({f.op for f in self.fallbacks}))

    @property
    def fallback_count(self) -> int:
        return sum(f.count for f in self.fallbacks)

    def __str__(self) -> str:
        where = f"{self.function} ({self.location})" if self.location else self.function
        if not self.compiled:
            return f"{where}: {self.ops} ops, ran eagerly\n    reason: {self.reason}"
        if self.per_size:
            return (f"{where}: {self.ops} ops, symbolic sizes: compiled once per concrete size "
                    "(each size listed as a graph of its own)")
        text = f"{where}: {self.ops} ops, " + ("split in parts compiled apart (listed as graphs of their own)"
                                              if self.split else f"compiled to {self.kernels} kernel(s)")
        if self.dynamic:
            text += " (symbolic sizes: one build for every size)"
        if self.backward_kernels is not None:
            text += f" (forward + backward: {self.backward_kernels} backward kernel(s))"
        return text + fallback_lines(self.fallbacks, "\n    ")


def fallback_lines(fallbacks, indent: str) -> str:
    """`, N op-level fallback(s)` and one line per op with its reason ('' when there are none)."""
    if not fallbacks:
        return ""
    head = f", {sum(f.count for f in fallbacks)} op-level fallback(s) (ATen ops run as they are)"
    return head + "".join(f"{indent}  {f}" for f in fallbacks)


_lock = threading.Lock()
RECORDS: list[BackendRecord] = []


def origin(gm: fx.GraphModule) -> tuple[str, str]:
    """The user frame of the graph's first op that carries a stack trace (both front ends set one)."""
    for node in gm.graph.nodes:
        frames = _FRAME.findall(node.meta.get("stack_trace") or "")
        if frames:
            path, line, name = frames[-1]
            return name, f"{path}:{line}"
    return "<graph>", ""


def _op_count(gm: fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module"))


def add_backend_record(gm: fx.GraphModule, *, compiled=None, error: BaseException | None = None,
                       split: OpFallback | None = None, per_size: bool = False, dynamic: bool = False) -> None:
    """`split`: the graph was split at a data-dependent op, which runs eagerly (its parts have records of their own).
    `per_size`: a graph of symbolic sizes, compiled per concrete size (kiln/sizes.py; each version has its own)."""
    function, location = origin(gm)
    if per_size:
        record = BackendRecord(weakref.ref(gm), function, location, _op_count(gm), True, per_size=True)
    elif split is not None:
        record = BackendRecord(weakref.ref(gm), function, location, _op_count(gm), True, 0, (split,), split=True)
    elif compiled is not None:
        backward = getattr(compiled, "backward_kernels", None)  # a CompiledTraining
        record = BackendRecord(weakref.ref(gm), function, location, _op_count(gm), True,
                               len(compiled.kernels) - (backward or 0), op_fallbacks(compiled.prims_gm),
                               backward_kernels=backward, dynamic=dynamic)
    else:
        record = BackendRecord(weakref.ref(gm), function, location, _op_count(gm), False,
                               reason=f"{type(error).__name__}: {error}")
    with _lock:
        RECORDS.append(record)


def backend_records() -> list[BackendRecord]:
    with _lock:
        return list(RECORDS)


def clear() -> None:
    with _lock:
        RECORDS.clear()
