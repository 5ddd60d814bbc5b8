"""The scheduler: group buffers into fused kernels, in program order, and say why not when not.

A FusedKernel iterates `outer` (x loop variables) and, for reductions, `inner` (r loop
variables). Its nodes run in order; consecutive r-level nodes share one inner loop
(horizontal fusion) unless one needs a reduction finished in that loop. A node joins the
latest kernel of a small window that runs after everything it reads, when its ranges fit
(same ranges; outer + inner; or outer alone) and it reads every buffer made in the kernel at
exactly the index that buffer was written at, so each x iteration only sees its own data.
Dependencies live in a networkx graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .ir import loop as L
from .ir.buffers import ComputedBuffer, ConstantBuffer, ExternBuffer, InputBuffer, Reduction, loop_syms
from .ir.index import substitute
from .ir.loop import LoopNode, LoopOp

MAX_KERNEL_NODES = 32  # bounds kernel size
FUSION_WINDOW = 8  # how many recent items a node may join: keeps scheduling linear
MIN_PARALLEL_ROWS = 64  # fewer outer iterations than this cannot keep the cores busy
SMALL_WORK = 1 << 15  # below this many elements, parallelism does not matter


@dataclass
class KernelNode:
    buffer: ComputedBuffer
    level: str  # "x": once per outer point; "r": inside an inner loop
    body: LoopNode  # in the kernel's loop variables
    store: object  # index in the kernel's loop variables
    group: int = -1  # which loop group of the kernel runs it
    stored: bool = True  # False: lives only as a local inside the kernel

    @property
    def name(self):
        return self.buffer.name

    @property
    def reduction(self):
        data = self.buffer.data
        return data.reduction_type if isinstance(data, Reduction) else None


@dataclass
class LoopGroup:
    level: str
    nodes: list[KernelNode] = field(default_factory=list)


@dataclass
class FusedKernel:
    name: str
    outer: tuple[int, ...]
    inner: tuple[int, ...]
    nodes: list[KernelNode] = field(default_factory=list)
    groups: list[LoopGroup] = field(default_factory=list)

    @property
    def xsyms(self):
        return loop_syms("x", self.outer)

    @property
    def rsyms(self):
        return loop_syms("r", self.inner)

    def node_of(self, name):
        return next((n for n in self.nodes if n.name == name), None)  # kernels hold <= MAX_KERNEL_NODES

    def reads(self) -> set[str]:
        """Buffers this kernel loads from memory (its own stored ones included)."""
        return {b for n in self.nodes for b in _loads(n.body)}

    def writes(self) -> list[str]:
        return [n.name for n in self.nodes if n.stored]

    def __repr__(self):
        lines = [f"{self.name}: outer {list(self.outer)}" + (f", inner {list(self.inner)}" if self.inner else "")]
        for g in self.groups:
            for n in g.nodes:
                what = n.reduction.value if n.reduction else "pointwise"
                keep = f" -> store {n.store!r}" if n.stored else " -> local"
                lines.append(f"  [{g.level} loop {self.groups.index(g)}] {n.name} = {what}{keep}")
        return "\n".join(lines)


def _loads(body: LoopNode):
    return [n.attr[0] for n in L.walk(body) if n.op in L.LOADS]


def _subst_body(body: LoopNode, mapping: dict) -> LoopNode:
    memo: dict = {}
    for n in L.walk(body):
        if n.op is LoopOp.LOAD:
            memo[n] = L.load(n.attr[0], substitute(n.attr[1], mapping), n.dtype)
        elif n.op is LoopOp.INDEX_EXPR:
            memo[n] = LoopNode(LoopOp.INDEX_EXPR, (), n.dtype, substitute(n.attr, mapping))
        elif n.args:
            memo[n] = LoopNode(n.op, tuple(memo[a] for a in n.args), n.dtype, n.attr)
        else:
            memo[n] = n
    return memo[body]


def _squeeze(ranges) -> tuple[int, ...]:
    return tuple(r for r in ranges if r != 1)


def _fit(own_syms, targets) -> dict | None:
    """Map a buffer's loop variables onto kernel variables, ignoring size-1 dims; None if they differ."""
    own = [s for s in own_syms if s.extent != 1]
    tgt = [t for t in targets if t.extent != 1]
    if [s.extent for s in own] != [t.extent for t in tgt]:
        return None
    return dict(zip(own, tgt))  # size-1 variables are 0 wherever they appear


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
    def __init__(self, graph):
        self.graph = graph
        self.deps = nx.DiGraph()  # buffer -> buffers that read it
        self.items: list = []  # FusedKernel | ExternBuffer, in run order
        self.where: dict[str, int] = {}  # buffer -> position of the item computing it
        self.not_fused: list[str] = []  # readable reasons

    def run(self):
        for buf in self.graph.buffers.values():
            if isinstance(buf, (InputBuffer, ConstantBuffer)):
                continue
            self.deps.add_node(buf.name)
            for src in buf.reads():
                self.deps.add_edge(src, buf.name)
            if isinstance(buf, ExternBuffer):
                self._place_item(buf)
            else:
                self._add_computed(buf)
        for kernel in self.kernels():
            self._group(kernel)
        self._mark_stores()
        return self

    def kernels(self) -> list[FusedKernel]:
        return [i for i in self.items if isinstance(i, FusedKernel)]

    def _place_item(self, item):
        self.items.append(item)
        for name in ([n.name for n in item.nodes] if isinstance(item, FusedKernel) else [item.name]):
            self.where[name] = len(self.items) - 1

    def _add_computed(self, buf):
        """Fuse into the latest kernel of the window that fits and runs after everything buf reads."""
        earliest = max((self.where.get(src, -1) for src in buf.reads()), default=-1)
        reasons = []
        for pos in range(len(self.items) - 1, max(earliest, len(self.items) - FUSION_WINDOW, 0) - 1, -1):
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
            if inner and outer + inner == kernel.outer and all(n.level == "x" for n in kernel.nodes):
                return self._regroup(kernel, outer, inner, buf)
        if isinstance(placed, str):
            return placed
        level, mapping = placed
        if level == "r" and not isinstance(buf.data, Reduction) and _serializes(kernel):
            return "would run pointwise work inside a reduction with too few rows to parallelize"
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
        """Keep a buffer out of memory when only its own kernel reads it, as a local there."""
        outputs = self.graph.output_buffers()
        for kernel in (i for i in self.items if isinstance(i, FusedKernel)):
            mine = {n.name: n for n in kernel.nodes}
            readers_outside = {b for b in mine for r in self.deps.successors(b) if r not in mine}
            for n in kernel.nodes:
                local_ok = all(_local_visible(mine[n.name], m) for m in kernel.nodes if n.name in _loads(m.body))
                n.stored = n.name in outputs or n.name in readers_outside or not local_ok
            for n in kernel.nodes:
                n.body = _use_locals(n, mine)

    def __repr__(self):
        parts = [repr(i) if isinstance(i, FusedKernel) else f"extern: {i!r}" for i in self.items]
        if self.not_fused:
            parts.append("not fused:\n  " + "\n  ".join(self.not_fused))
        return "\n".join(parts)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _serializes(kernel) -> bool:
    """Outer loops are what run in parallel: a big row loop under few rows would run on one core."""
    return _numel(kernel.outer) < MIN_PARALLEL_ROWS and _numel(kernel.outer + kernel.inner) >= SMALL_WORK


def _local_visible(producer: KernelNode, consumer: KernelNode) -> bool:
    """Can consumer read producer's value from a local variable rather than memory?"""
    if producer.level == "x":
        return True  # x-level values live for the whole x iteration
    if producer.reduction:
        return True  # readers sit in later groups (see _group), where the result is an x-level value
    return consumer.level == "r" and consumer.group == producer.group


def _use_locals(n: KernelNode, mine: dict) -> LoopNode:
    def local_for(load):
        p = mine.get(load.attr[0])
        if p is None or p is n or not _local_visible(p, n):
            return None
        return LoopNode(LoopOp.LOCAL, (), load.dtype, p.name)

    memo: dict = {}
    for m in L.walk(n.body):
        if m.op is LoopOp.LOAD:
            memo[m] = local_for(m) or m
        elif m.args:
            memo[m] = LoopNode(m.op, tuple(memo[a] for a in m.args), m.dtype, m.attr)
        else:
            memo[m] = m
    return memo[n.body]

