"""Memory planning: allocate each stored buffer before its first writer, free it after its last
reader, and hand freed storage of the same size and dtype to the next allocation."""
from __future__ import annotations

from kiln.prims.symbolic import size_hint

from .ir.buffers import ComputedBuffer, ExternBuffer
from .ir.schedule import Alloc, Free, FusedKernel, Run


def _writes(item) -> list[str]:
    return item.writes() if isinstance(item, FusedKernel) else [item.name]


def plan_memory(items, outputs: set[str], graph_buffers: dict) -> list:
    """Steps for the wrapper, in order: Alloc / Run / Free."""
    last_use: dict[str, int] = {}
    for i, item in enumerate(items):
        for b in item.reads() | set(_writes(item)):
            last_use[b] = i
    _keep_viewed(items, last_use, outputs, graph_buffers, end=len(items))
    dying: dict[int, list[str]] = {}
    for name, last in last_use.items():
        dying.setdefault(last, []).append(name)
    pool: dict[tuple, list[str]] = {}
    steps = []
    made: set[str] = set()  # buffers the wrapper holds by now: only those can be freed
    for i, item in enumerate(items):
        made.update(_writes(item))
        for name in _writes(item):
            if _is_fallback(item):
                continue  # the ATen op allocates its own result
            layout = graph_buffers[name].layout
            key = (layout.storage_size(), layout.dtype, layout.device)
            free = pool.get(key)
            steps.append(Alloc(name, layout, free.pop() if free else None))
        steps.append(Run(item))
        for name in sorted(dying.get(i, ())):
            if name in outputs or name not in made or name not in graph_buffers or not _is_temp(graph_buffers[name]):
                continue
            steps.append(Free(name))
            if _is_fallback(graph_buffers[name]):
                continue  # the ATen op's own result may view an input or another buffer: never reuse it
            layout = graph_buffers[name].layout
            pool.setdefault((layout.storage_size(), layout.dtype, layout.device), []).append(name)
    steps = _limit_reuse(steps)
    # Storage handed over to a later buffer is kept alive until then rather than freed.
    reused = {s.reuse for s in steps if isinstance(s, Alloc) and s.reuse}
    return [s for s in steps if not (isinstance(s, Free) and s.name in reused)]


MAX_HOLD_STEPS = 64  # a freed buffer is kept for reuse at most this many steps (keeps planning linear)


def _limit_reuse(steps: list) -> list:
    """Keep a freed buffer for a later allocation only while that does not raise the peak above
    freeing it at once and allocating afresh; otherwise the later allocation gets new storage."""
    live, level = [], 0
    size = {}
    for s in steps:  # the profile with every buffer freed at its last use
        if isinstance(s, Alloc):
            size[s.name] = _nbytes(s.layout)
            level += size[s.name]
        elif isinstance(s, Free):
            level -= size.get(s.name, 0)
        live.append(level)
    peak = max(live, default=0)
    freed_at = {s.name: i for i, s in enumerate(steps) if isinstance(s, Free)}
    out = list(steps)
    for j, s in enumerate(steps):
        if not (isinstance(s, Alloc) and s.reuse):
            continue
        i = freed_at[s.reuse]
        if j - i <= MAX_HOLD_STEPS and max(live[i:j]) + size[s.name] <= peak:
            for t in range(i, j):
                live[t] += size[s.name]
        else:
            out[j] = Alloc(s.name, s.layout, None)
    return out


def _keep_viewed(items, last_use, outputs, graph_buffers, end):
    """A library result that may view its arguments (the ATen schema says its result aliases)
    keeps their storage: each argument lives as long as the result, and forever when the result is
    an output, so no later allocation reuses memory the view still reads. Walked backwards, so a
    view of a view extends its root too."""
    for item in reversed(items):
        if not (isinstance(item, ExternBuffer) and item.kind in ("fallback", "extern") and _returns_view(item.op)):
            continue
        results = [n for n in (item.outputs or (item.name,)) if n is not None]
        until = max(end if r in outputs else last_use.get(r, 0) for r in results)
        for arg in item.reads():
            if arg in graph_buffers:
                last_use[arg] = max(last_use.get(arg, 0), until)


def _returns_view(op) -> bool:
    schema = getattr(op, "_schema", None)
    return schema is None or any(r.alias_info is not None for r in schema.returns)


def _is_fallback(buf) -> bool:
    """A result a library allocated itself (fallbacks and extern prims calling ATen)."""
    return isinstance(buf, ExternBuffer) and buf.kind in ("fallback", "extern")


def _is_temp(buf) -> bool:
    return isinstance(buf, (ComputedBuffer, ExternBuffer))


def peak_bytes(steps) -> int:
    """Bytes held by buffers the wrapper allocates or receives from library calls, at the fullest
    point of the plan (graph inputs are not counted)."""
    live = peak = 0
    sizes: dict[str, int] = {}
    for s in steps:
        if isinstance(s, Alloc) and s.reuse is None:
            sizes[s.name] = _nbytes(s.layout)
            live += sizes[s.name]
        elif isinstance(s, Alloc):
            sizes[s.name] = sizes.pop(s.reuse)
        elif isinstance(s, Run) and isinstance(s.item, ExternBuffer) and s.item.kind != "matmul":
            sizes[s.item.name] = _nbytes(s.item.layout)  # the library allocates its own result
            live += sizes[s.item.name]
        elif isinstance(s, Free):
            live -= sizes.pop(s.name, 0)
        peak = max(peak, live)
    return peak


def _nbytes(layout) -> int:
    return size_hint(layout.storage_size()) * layout.dtype.itemsize  # a symbolic size at its example value


def eager_peak_bytes(aten_gm) -> int:
    """The same count for eager PyTorch running the ATen graph: every op's result allocated when it
    runs (a view shares its base's storage), freed after the last use of it or of its views;
    outputs are kept."""
    import torch.fx as fx

    from kiln.prims import META_KEY

    nodes = list(aten_gm.graph.nodes)
    base: dict = {}  # node -> the node whose allocation holds its data
    bytes_of: dict = {}
    last_use: dict = {}
    for i, n in enumerate(nodes):
        for a in n.all_input_nodes:
            last_use[base.get(a, a)] = i
        if n.op != "call_function":
            continue
        schema = getattr(n.target, "_schema", None)
        if schema is not None and any(r.alias_info is not None for r in schema.returns) and n.args \
                and isinstance(n.args[0], fx.Node):
            base[n] = base.get(n.args[0], n.args[0])  # a view (or an in-place op's self)
            continue
        base[n] = n
        metas = n.meta.get(META_KEY)
        bytes_of[n] = sum(_meta_nbytes(m) for m in (metas if isinstance(metas, tuple) else (metas,)))
    kept = {base.get(a, a) for a in nodes[-1].all_input_nodes} if nodes and nodes[-1].op == "output" else set()
    frees: dict[int, list] = {}
    for b, i in last_use.items():
        if b in bytes_of and b not in kept:
            frees.setdefault(i, []).append(b)
    live = peak = 0
    for i, n in enumerate(nodes):
        live += bytes_of.get(n, 0)
        peak = max(peak, live)
        live -= sum(bytes_of[b] for b in frees.get(i, ()))
    return peak


def _meta_nbytes(m) -> int:
    if m is None or not hasattr(m, "shape"):
        return 0
    if any(d == 0 for d in m.shape):
        return 0
    return size_hint(1 + sum((d - 1) * st for d, st in zip(m.shape, m.strides))) * m.dtype.itemsize
