"""C++ blocks of temporaries: one name per loop node, invariant work hoisted to the enclosing block."""
from __future__ import annotations

import torch

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.index import syms_of
from kiln.inductor.ir.loop import LoopNode, LoopOp
from kiln.prims.symbolic import is_symbolic

from ..index_text import index_text
from .ops import (BY_DTYPE, DOMAIN, EXACT_ON_HALF, EXPR, HALF_FLOATS, ctype, literal, load_value, rounded,
                  store_value)


def index_str(x) -> str:
    return index_text(x, "/")


class Scope:
    """Temporaries of one C++ block; looks names up in enclosing blocks; hoists invariant work out."""

    def __init__(self, lines: list[str], indent: str, parent: "Scope | None" = None, loop_syms=frozenset(),
                 loop_locals=frozenset(), barrier: bool = False, local_suffix: str | None = None):
        self.lines, self.indent, self.parent = lines, indent, parent
        self.loop_syms, self.loop_locals = loop_syms, loop_locals  # what varies inside this block
        # nothing is hoisted out of an OpenMP parallel region, nor out of a loop that runs zero
        # times: a read hoisted from an empty loop reads past an empty (maybe null) buffer
        self.barrier = barrier or any(s.extent == 0 or is_symbolic(s.extent) for s in self.loop_syms)
        # how a kernel's own values are read: `v_buf3`, or `v_buf3[kiln_l]` when they are per lane
        self.local_suffix = local_suffix if local_suffix is not None else (parent.local_suffix if parent else "")
        self.names: dict[LoopNode, str] = {}
        self.counter = parent.counter if parent else [0]

    def child(self, lines, indent, loop_syms, loop_locals=frozenset(), barrier=False) -> "Scope":
        return Scope(lines, indent, self, frozenset(loop_syms), frozenset(loop_locals), barrier)

    def lookup(self, node):
        s = self
        while s is not None:
            if node in s.names:
                return s.names[node]
            s = s.parent
        return None

    def varies(self, node: LoopNode) -> bool:
        if self.barrier:
            return True
        if node.op is LoopOp.LOAD:
            return bool(syms_of(node.attr[1]) & self.loop_syms)
        if node.op is LoopOp.INDEX_EXPR:
            return bool(syms_of(node.attr) & self.loop_syms)
        if node.op is LoopOp.LOCAL:
            return node.attr in self.loop_locals
        return any(self.varies(a) for a in node.args)

    def emit(self, root: LoopNode) -> str:
        for node in L.walk(root):
            if self.lookup(node) is not None:
                continue
            target = self
            while target.parent is not None and not target.varies(node):
                target = target.parent  # as far out as it is invariant
            target._define(node)
        return self.lookup(root)

    def _define(self, node: LoopNode):
        if node.op is LoopOp.CONSTANT:
            self.names[node] = literal(node.attr, node.dtype)
            return
        if node.op is LoopOp.LOCAL:
            self.names[node] = f"v_{node.attr}{self.local_suffix}"
            return
        if node.op is LoopOp.LOAD:
            rhs = load_value(node.dtype, f"p_{node.attr[0]}[{index_str(node.attr[1])}]")
        elif node.op is LoopOp.INDEX_EXPR:
            rhs = f"static_cast<int64_t>({index_str(node.attr)})"
        elif node.op is LoopOp.INDIRECT_LOAD:
            rhs = load_value(node.dtype, f"p_{node.attr[0]}[{self.lookup(node.args[0])}]")
            if len(node.args) > 1:  # masked: never read where the mask is false
                rhs = f"{self.lookup(node.args[1])} ? {rhs} : {literal(0, node.dtype)}"
        else:
            rhs = _math(node, [self.lookup(a) for a in node.args])
        name = f"t{self.counter[0]}"
        self.counter[0] += 1
        self.lines.append(f"{self.indent}const {ctype(node.dtype)} {name} = {rhs};")
        if node.op in DOMAIN and ctype(node.dtype) == "float":
            self.lines.append(f"{self.indent}kiln_big |= {DOMAIN[node.op].format(self.lookup(node.args[0]))};")
        self.names[node] = name


def _math(node: LoopNode, args: list[str]) -> str:
    """One op's expression. 16-bit floats are floats here (widened at loads): an op with a 16-bit
    result computes in float and rounds once, as eager's kernels and the Triton target do; a cast
    to one rounds from float (eager casts float64 and integers to float first, then rounds)."""
    if node.dtype in HALF_FLOATS:
        if node.op is LoopOp.TO_DTYPE:
            return rounded(node.dtype, f"static_cast<float>({args[0]})")
        template = BY_DTYPE.get((node.op, torch.float32), EXPR[node.op])
        value = template.format(*args, T="float")
        exact = node.op in EXACT_ON_HALF and all(a.dtype in (node.dtype, torch.bool) for a in node.args)
        return value if exact else rounded(node.dtype, value)
    template = BY_DTYPE.get((node.op, node.dtype), EXPR[node.op])
    return template.format(*args, T=ctype(node.dtype))


def reduction_result(n, value: str) -> str:
    """A reduction's accumulated value (float for 16-bit elements) in the buffer's dtype."""
    return rounded(n.buffer.layout.dtype, value)


def finish_value(scope: Scope, n, value: str):
    """Name a node's value `v_<buffer>` and store it where anyone outside this block needs it."""
    dtype = n.buffer.layout.dtype
    if n.reduction:
        value = reduction_result(n, value)
    scope.lines.append(f"{scope.indent}const {ctype(dtype)} v_{n.name} = {value};")
    if n.stored or n.scratch:
        scope.lines.append(f"{scope.indent}p_{n.name}[{index_str(n.store)}] = {store_value(dtype, f'v_{n.name}')};")


def uses_domain_ops(kernel) -> bool:
    """Does the kernel call math whose fast path needs the out-of-domain flag (see ops.DOMAIN)?"""
    return any(m.op in DOMAIN for n in kernel.nodes for m in L.walk(n.body))
