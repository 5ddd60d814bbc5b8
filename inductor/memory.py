"""Memory planning: allocate each stored buffer before its first writer, free it after its last
reader, and hand freed storage of the same size and dtype to the next allocation."""
from __future__ import annotations

from dataclasses import dataclass

from .ir.buffers import ExternBuffer, Layout
from .scheduler import FusedKernel


@dataclass(frozen=True)
class Alloc:
    name: str
    layout: Layout
    reuse: str | None = None  # take over this freed buffer's storage

    def __repr__(self):
        return f"alloc {self.name} {self.layout}" + (f" (reusing {self.reuse})" if self.reuse else "")


@dataclass(frozen=True)
class Free:
    name: str

    def __repr__(self):
        return f"free {self.name}"


@dataclass(frozen=True)
class Run:
    item: object  # FusedKernel | ExternBuffer

    def __repr__(self):
        i = self.item
        return f"run {i.name}" if isinstance(i, FusedKernel) else f"call {i.name} ({i.kind})"


def _writes(item) -> list[str]:
    return item.writes() if isinstance(item, FusedKernel) else [item.name]


def plan_memory(items, outputs: set[str], graph_buffers: dict) -> list:
    """Steps for the wrapper, in order: Alloc / Run / Free."""
    last_use: dict[str, int] = {}
    for i, item in enumerate(items):
        for b in item.reads() | set(_writes(item)):
            last_use[b] = i
    pool: dict[tuple, list[str]] = {}
    steps = []
    for i, item in enumerate(items):
        for name in _writes(item):
            if _is_fallback(item):
                continue  # the ATen op allocates its own result
            layout = graph_buffers[name].layout
            key = (layout.storage_size(), layout.dtype, layout.device)
            free = pool.get(key)
            steps.append(Alloc(name, layout, free.pop() if free else None))
        steps.append(Run(item))
        for name in sorted(n for n, last in last_use.items() if last == i):
            if name in outputs or name not in graph_buffers or not _is_temp(graph_buffers[name]):
                continue
            steps.append(Free(name))
            if _is_fallback(graph_buffers[name]):
                continue  # the ATen op's own result may view an input or another buffer: never reuse it
            layout = graph_buffers[name].layout
            pool.setdefault((layout.storage_size(), layout.dtype, layout.device), []).append(name)
    # Storage handed over to a later buffer is kept alive until then rather than freed.
    reused = {s.reuse for s in steps if isinstance(s, Alloc) and s.reuse}
    return [s for s in steps if not (isinstance(s, Free) and s.name in reused)]


def _is_fallback(buf) -> bool:
    """A result a library allocated itself (fallbacks and extern prims calling ATen)."""
    return isinstance(buf, ExternBuffer) and buf.kind in ("fallback", "extern")


def _is_temp(buf) -> bool:
    from .ir.buffers import ComputedBuffer

    return isinstance(buf, (ComputedBuffer, ExternBuffer))


def peak_bytes(steps) -> int:
    """Bytes held by buffers the wrapper allocates, at the fullest point of the plan."""
    live = peak = 0
    sizes: dict[str, int] = {}
    for s in steps:
        if isinstance(s, Alloc) and s.reuse is None:
            sizes[s.name] = s.layout.storage_size() * s.layout.dtype.itemsize
            live += sizes[s.name]
            peak = max(peak, live)
        elif isinstance(s, Alloc):
            sizes[s.name] = sizes.pop(s.reuse)
        elif isinstance(s, Free):
            live -= sizes.pop(s.name, 0)
    return peak
