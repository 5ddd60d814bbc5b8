"""The scheduler: group buffers into fused kernels, in program order, and say why not when not.

A FusedKernel iterates `outer` (x loop variables) and, for reductions, `inner` (r loop
variables). Its nodes run in order; consecutive r-level nodes share one inner loop
(horizontal fusion) unless one needs a reduction finished in that loop. A node joins the
latest kernel of a small window that runs after everything it reads, when its ranges fit
(loop_dims.fit: outer, or outer + inner, possibly across a reshape) and it reads every buffer
made in the kernel at exactly the index that buffer was written at, so each x iteration only
sees its own data. Values read only in their kernel stay in locals, scratch rows, or are
recomputed where read; then loops that every index walks as one are merged. Buffers nothing
reads are dropped. Dependencies live in a networkx graph.
"""
from __future__ import annotations

import networkx as nx

from .ir import loop as L
from kiln.prims.meta import contiguous_strides

from .ir.buffers import ComputedBuffer, ConstantBuffer, ExternBuffer, InputBuffer, Reduction
from .ir.index import strided_index, substitute
from .ir.loop import LoopNode, LoopOp
from .ir.schedule import FusedKernel, KernelNode, LoopGroup, loads as _loads
from .loop_dims import fit as _fit, merge_dims, numel as _numel, subst_body as _subst_body

MAX_KERNEL_NODES = 32  # bounds kernel size
FUSION_WINDOW = 8  # how many recent items a node may join: keeps scheduling linear
SCRATCH_BYTES = 1 << 16  # a row-sized value shared by a kernel's loops lives on the stack up to this size


def _squeeze(ranges) -> tuple[int, ...]:
    return tuple(r for r in ranges if r != 1)


def _place(kernel: FusedKernel, buf: ComputedBuffer):
    """(level, sym mapping) if buf's ranges fit the kernel's loops, else a reason string."""
    data = buf.data
    xs, rs = kernel.xsyms, kernel.rsyms
    if isinstance(data, Reduction):
        mx, mr = _fit(data.syms(), xs), _fit(data.rsyms(), rs)
        if mx is not None and mr is not None and rs:
            return "r", mx | mr
        return f"reduction over {list(data.ranges)}x{list(data.reduction_ranges)} does not fit"
    m = _fit(data.syms(), xs)
    if m is not None:
        return "x", m
    m = _fit(data.syms(), xs + rs) if rs else None
    if m is not None:
        return "r", m
    return f"ranges {list(data.ranges)} do not fit"


class Scheduler:
    def __init__(self, graph, scratch: bool = True, window: int = FUSION_WINDOW, horizontal: bool = True):
        self.graph = graph
        self.window = window  # 1: only the latest item, so no computation moves before another
        self.horizontal = horizontal  # False: a buffer joins only a kernel that makes something it reads
        self.scratch = scratch  # may a kernel keep a row of values in a local array (C++: yes; Triton: no)
        self.deps = nx.DiGraph()  # buffer -> buffers that read it
        self.items: list = []  # FusedKernel | ExternBuffer, in run order
        self.where: dict[str, int] = {}  # buffer -> position of the item computing it
        self.not_fused: list[str] = []  # readable reasons

    def run(self):
        computed = [b for b in self.graph.buffers.values() if not isinstance(b, (InputBuffer, ConstantBuffer))]
        for buf in computed:
            self.deps.add_node(buf.name)
            for src in buf.reads():
                self.deps.add_edge(src, buf.name)
        live = self._live()
        for buf in computed:
            if buf.name not in live:
                self.not_fused.append(f"{buf.name} dropped: nothing reads it")
                continue
            if isinstance(buf, ExternBuffer):
                self._place_item(buf)
            else:
                self._add_computed(buf)
        for kernel in self.kernels():
            self._group(kernel)
        self._mark_stores()
        for kernel in self.kernels():
            merge_dims(kernel)
        return self

    def kernels(self) -> list[FusedKernel]:
        return [i for i in self.items if isinstance(i, FusedKernel)]

    def _live(self) -> set[str]:
        """Buffers the outputs need (a var rewritten to Welford can leave its mean's sum unread)."""
        live, stack = set(), [b for b in output_names(self.graph) if b in self.deps]
        stack += [n for n in self.deps  # library calls stay, except matmuls (pure)
                  if isinstance(self.graph.buffers[n], ExternBuffer) and self.graph.buffers[n].kind != "matmul"]
        while stack:
            b = stack.pop()
            if b not in live:
                live.add(b)
                stack.extend(self.deps.predecessors(b))
        return live

    def _place_item(self, item):
        self.items.append(item)
        for name in ([n.name for n in item.nodes] if isinstance(item, FusedKernel) else [item.name]):
            self.where[name] = len(self.items) - 1

    def _add_computed(self, buf):
        """Fuse into the latest kernel of the window that fits and runs after everything buf reads."""
        earliest = max((self.where.get(src, -1) for src in buf.reads()), default=-1)
        reasons = []
        for pos in range(len(self.items) - 1, max(earliest, len(self.items) - self.window, 0) - 1, -1):
            kernel = self.items[pos]
            if not isinstance(kernel, FusedKernel):
                continue
            reason = self._try_fuse(kernel, buf)
            if reason is None:
                self.where[buf.name] = pos
                return
            reasons.append(f"{buf.name} not fused into {kernel.name}: {reason}")
        self.not_fused.extend(reasons)
        data = buf.data
        outer, inner = (data.ranges, data.reduction_ranges) if isinstance(data, Reduction) else (data.ranges, ())
        kernel = FusedKernel(f"kernel{len(self.kernels())}", _squeeze(outer), _squeeze(inner))
        assert self._try_fuse(kernel, buf) is None
        self._place_item(kernel)

    def _try_fuse(self, kernel: FusedKernel, buf: ComputedBuffer) -> str | None:
        if len(kernel.nodes) >= MAX_KERNEL_NODES:
            return "kernel is full (fusion window)"
        placed = _place(kernel, buf)
        if isinstance(placed, str) and not kernel.inner and isinstance(buf.data, Reduction):
            data = buf.data
            outer, inner = _squeeze(data.ranges), _squeeze(data.reduction_ranges)
            if inner and _numel(outer + inner) == _numel(kernel.outer) and all(n.level == "x" for n in kernel.nodes):
                return self._regroup(kernel, outer, inner, buf)
        if isinstance(placed, str):
            return placed
        level, mapping = placed
        if not self.horizontal and kernel.nodes and not any(kernel.node_of(b) for b in buf.reads()):
            return "independent of this kernel (horizontal fusion is off: it raised the peak)"
        body = _subst_body(buf.data.body, mapping)
        store = substitute(buf.store_index(), mapping)
        for load in L.walk(body):
            if load.op not in L.LOADS:
                continue
            producer = kernel.node_of(load.attr[0])
            if producer is not None and load.op is LoopOp.INDIRECT_LOAD:
                return f"reads {producer.name} at computed offsets"
            if producer is not None and load.attr[1] != producer.store:
                return f"reads {producer.name} at {load.attr[1]!r}, written at {producer.store!r}"
        kernel.nodes.append(KernelNode(buf, level, body, store))
        return None

    def _regroup(self, kernel, outer, inner, buf):
        """A pointwise-only kernel over outer+inner becomes an outer x inner kernel, then takes buf."""
        trial = FusedKernel(kernel.name, outer, inner)
        for n in kernel.nodes:
            if self._try_fuse(trial, n.buffer) is not None:
                return "pointwise nodes cannot be regrouped around the reduction"
        reason = self._try_fuse(trial, buf)
        if reason is None:
            kernel.outer, kernel.inner, kernel.nodes = trial.outer, trial.inner, trial.nodes
        return reason

    def _group(self, kernel: FusedKernel):
        """Split nodes into loop groups; r-level neighbours share a loop unless one needs the other's result."""
        for n in kernel.nodes:
            g = kernel.groups[-1] if kernel.groups else None
            needs = set(_loads(n.body))
            if g is not None and g.level == n.level and not (n.level == "r" and any(
                    m.reduction and m.name in needs for m in g.nodes)):
                g.nodes.append(n)
            else:
                kernel.groups.append(LoopGroup(n.level, [n]))
            n.group = len(kernel.groups) - 1

    def _mark_stores(self):
        """Keep a buffer out of memory when only its own kernel reads it: as a local there, as a
        per-row scratch array when a later inner loop reads it, or else recomputed where it is read."""
        outputs = output_names(self.graph)
        for kernel in (i for i in self.items if isinstance(i, FusedKernel)):
            mine = {n.name: n for n in kernel.nodes}
            readers_outside = {b for b in mine for r in self.deps.successors(b) if r not in mine}
            readers: dict[str, list] = {n.name: [] for n in kernel.nodes}
            for m in kernel.nodes:
                for b in set(_loads(m.body)):
                    if b in readers and b != m.name:
                        readers[b].append(m)
            inline = set()
            for n in kernel.nodes:
                n.stored = n.name in outputs or n.name in readers_outside
                if not n.stored and not all(_local_visible(n, m) for m in readers[n.name]):
                    n.scratch = self.scratch and _scratch_ok(kernel, n)
                    if not n.scratch:
                        inline.add(n.name)
            rflat = strided_index(kernel.rsyms, contiguous_strides(kernel.inner))
            bodies = [_use_locals(n.body, n, mine, inline, rflat) for n in kernel.nodes]
            for n, body in zip(kernel.nodes, bodies):
                n.body = body
                if n.scratch:
                    n.store = rflat
            kernel.nodes = [n for n in kernel.nodes if n.name not in inline]
            for g in kernel.groups:
                g.nodes = [n for n in g.nodes if n.name not in inline]

    def __repr__(self):
        parts = [repr(i) if isinstance(i, FusedKernel) else f"extern: {i!r}" for i in self.items]
        if self.not_fused:
            parts.append("not fused:\n  " + "\n  ".join(self.not_fused))
        return "\n".join(parts)


def _local_visible(producer: KernelNode, consumer: KernelNode) -> bool:
    """Can consumer read producer's value from a local variable rather than memory?"""
    if producer.level == "x":
        return True  # x-level values live for the whole x iteration
    if producer.reduction:
        return True  # readers sit in later groups (see _group), where the result is an x-level value
    return consumer.level == "r" and consumer.group == producer.group


def output_names(graph) -> set[str]:
    """Buffers the wrapper reads after the kernels (the graph says, when it knows about copy-backs)."""
    if hasattr(graph, "output_buffers"):
        return graph.output_buffers()
    return {o.value if o.kind == "buffer" else o.value[0] for o in graph.outputs if o.kind in ("buffer", "view")}


def _scratch_ok(kernel, n) -> bool:
    """An r-level pointwise value read by a later inner loop of its kernel: a stack row if small enough."""
    size = _numel(kernel.inner)  # a symbolic row has no bound: its values are recomputed where read
    return n.level == "r" and not n.reduction and isinstance(size, int) and size * n.buffer.layout.dtype.itemsize <= SCRATCH_BYTES


def _use_locals(body: LoopNode, n: KernelNode, mine: dict, inline: set, rflat) -> LoopNode:
    """body (as read by n) with reads of values made in n's kernel turned into locals, scratch-row
    reads, or, for values neither can hold, the producing expression itself (recomputed)."""
    memo: dict = {}
    for m in L.walk(body):
        p = mine.get(m.attr[0]) if m.op is LoopOp.LOAD else None
        if p is None or p is n:
            memo[m] = LoopNode(m.op, tuple(memo[a] for a in m.args), m.dtype, m.attr) if m.args else m
        elif p.name in inline:
            memo[m] = _use_locals(p.body, n, mine, inline, rflat)
        elif _local_visible(p, n):
            memo[m] = LoopNode(LoopOp.LOCAL, (), m.dtype, p.name)
        elif p.scratch:
            memo[m] = L.load(p.name, rflat, m.dtype)
        else:
            memo[m] = m
    return memo[body]
