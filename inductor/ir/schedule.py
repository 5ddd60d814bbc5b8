"""The schedule: what the scheduler and the memory plan hand to codegen.

A `FusedKernel` iterates `outer` (x loop variables) and, for reductions, `inner` (r loop
variables); its `LoopGroup`s run in order, each a list of `KernelNode`s. The memory plan is a
list of steps: `Alloc` / `Run` (a kernel or an extern call) / `Free`. Codegen reads only these
(and the buffers and loop IR they hold)."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import loop as L
from .buffers import ComputedBuffer, ExternBuffer, Layout, Reduction, loop_syms
from .loop import LoopNode


@dataclass
class KernelNode:
    buffer: ComputedBuffer
    level: str  # "x": once per outer point; "r": inside an inner loop
    body: LoopNode  # in the kernel's loop variables
    store: object  # index in the kernel's loop variables
    group: int = -1  # which loop group of the kernel runs it
    stored: bool = True  # False: lives only inside the kernel (a local, or a scratch row)
    scratch: bool = False  # kept in a per-row array of the kernel (read by a later inner loop)

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
        return next((n for n in self.nodes if n.name == name), None)  # kernels hold few nodes

    def reads(self) -> set[str]:
        """Buffers this kernel loads from memory (its own stored ones included; not its locals or
        scratch rows, which never leave the kernel: Triton reuses a local in later loop groups)."""
        internal = {n.name for n in self.nodes if not n.stored}
        return {b for n in self.nodes for b in loads(n.body)} - internal

    def writes(self) -> list[str]:
        return [n.name for n in self.nodes if n.stored]

    def __repr__(self):
        lines = [f"{self.name}: outer {list(self.outer)}" + (f", inner {list(self.inner)}" if self.inner else "")]
        for g in self.groups:
            for n in g.nodes:
                what = n.reduction.value if n.reduction else "pointwise"
                keep = f" -> store {n.store!r}" if n.stored else (" -> scratch row" if n.scratch else " -> local")
                lines.append(f"  [{g.level} loop {self.groups.index(g)}] {n.name} = {what}{keep}")
        return "\n".join(lines)


def loads(body: LoopNode) -> list[str]:
    """Names of the buffers a loop body loads."""
    return [n.attr[0] for n in L.walk(body) if n.op in L.LOADS]


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
    item: FusedKernel | ExternBuffer

    def __repr__(self):
        i = self.item
        return f"run {i.name}" if isinstance(i, FusedKernel) else f"call {i.name} ({i.kind})"
