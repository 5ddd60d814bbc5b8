"""Render a FusedKernel as a Triton kernel: the same loop groups as C++, as blocks of lanes.

Pointwise kernels are 1-D over the flattened outer range. Reduction kernels are 2-D tiles
(XBLOCK rows x RBLOCK lanes) in one of two forms (configs.py picks): *persistent*, where RBLOCK
covers the whole row, so every loop group is straight-line code over the same row tile and a
value loaded once is reused by every group; or *looped*, where every inner loop group walks the
row in RBLOCK steps, accumulating lane-wise and reducing the lanes once at the end.

Everything is GPU-safe as well as interpreter-safe: no data-dependent Python control flow,
block sizes are tl.constexpr, every load and store is masked, and index math is int64 when an
element index can reach 2**31 (int32 otherwise, as Triton's program ids are).
"""
from __future__ import annotations

import torch

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.index import Affine, FloorDiv, Mod, bounds, syms_of
from kiln.inductor.ir.loop import LoopNode, LoopOp
from kiln.prims import UnsupportedGraph

from . import configs
from ..index_check import kernel_checks_indices
from ..index_text import index_text, size_text
from ..kernel_args import kernel_args, size_params
from kiln.prims.symbolic import is_symbolic
from .ops import BY_DTYPE, EXPR, HALF_FLOATS, REDUCTION, TL_DTYPES, WIDEN, acc_dtype, extreme, literal, tl_dtype

HEADER = """import triton
import triton.language as tl
from kiln.codegen.triton import device_math as km
"""


def index_str(x) -> str:
    return index_text(x, "//")


def _largest(x) -> int:
    """Largest magnitude an index expression or any of its parts can take."""
    lo, hi = bounds(x)
    inner = [x.arg] if isinstance(x, (FloorDiv, Mod)) else [t for t, _ in x.terms] if isinstance(x, Affine) else []
    return max([abs(lo), abs(hi)] + [_largest(t) for t in inner])


def needs_int64(kernel) -> bool:
    """Triton computes program ids and aranges in int32: widen when any index could overflow it
    (always, for sizes that are symbols)."""
    if is_symbolic(configs.numel(kernel.outer)) or is_symbolic(configs.numel(kernel.inner)):
        return True
    if configs.numel(kernel.outer) * configs.numel(kernel.inner) >= configs.INT32_LIMIT:
        return True
    for n in kernel.nodes:
        indices = [n.store]
        for m in L.walk(n.body):
            if m.op is LoopOp.LOAD:
                indices.append(m.attr[1])
            elif m.op is LoopOp.INDEX_EXPR:
                indices.append(m.attr)
        if any(_largest(i) >= configs.INT32_LIMIT for i in indices):
            return True
    return False


def _unflatten(lines, ind, flat, syms):
    stride = 1
    parts = []
    for s in reversed(syms):
        # a size-0 dim: every lane is masked off; never divide by 0 (a symbolic size is >= 1 here:
        # a launch over a zero size has no programs)
        extent = s.extent if is_symbolic(s.extent) else max(s.extent, 1)
        expr = f"({flat} // {size_text(stride)})" if stride != 1 else flat
        parts.append(f"{ind}{s.name} = {expr} % {size_text(extent)}" if s is not syms[0] else f"{ind}{s.name} = {expr}")
        stride = stride * extent
    lines.extend(reversed(parts))


class Scope:
    """Like the C++ scope: names values once, hoists work that does not vary with r out of the loop."""

    def __init__(self, lines, ind, mask, zero, parent=None, loop_syms=frozenset(), loop_locals=frozenset()):
        self.lines, self.ind, self.mask, self.zero, self.parent = lines, ind, mask, zero, parent
        self.loop_syms, self.loop_locals = loop_syms, loop_locals
        self.names: dict[LoopNode, str] = {}
        self.counter = parent.counter if parent else [0]

    def lookup(self, node):
        s = self
        while s is not None:
            if node in s.names:
                return s.names[node]
            s = s.parent
        return None

    def varies(self, node) -> bool:
        if any(s.extent == 0 for s in self.loop_syms):
            return True  # an empty row: hoisted out, a read would run (xmask only) on an empty buffer
        if node.op is LoopOp.LOAD:
            return bool(syms_of(node.attr[1]) & self.loop_syms)
        if node.op is LoopOp.INDEX_EXPR:
            return bool(syms_of(node.attr) & self.loop_syms)
        if node.op is LoopOp.LOCAL:
            return node.attr in self.loop_locals
        return any(self.varies(a) for a in node.args)

    def emit(self, root) -> str:
        for node in L.walk(root):
            if self.lookup(node) is None:
                target = self if (self.parent is None or self.varies(node)) else self.parent
                target._define(node)
        return self.lookup(root)

    def _define(self, node):
        if node.dtype not in TL_DTYPES:
            raise UnsupportedGraph(f"dtype {node.dtype} is not supported by the Triton backend yet")
        if node.op is LoopOp.LOCAL:
            self.names[node] = f"v_{node.attr}"
            return
        if node.op is LoopOp.CONSTANT:
            if node.dtype == torch.bfloat16:  # exact (literal() rounds); Triton <= 3.7's interpreter has no bf16 full
                rhs = f"km.to_bfloat16(tl.full([1], {literal(node.attr, node.dtype)}, tl.float32))"
            else:
                rhs = f"tl.full([1], {literal(node.attr, node.dtype)}, {tl_dtype(node.dtype)})"
        elif node.op is LoopOp.LOAD:
            rhs = f"tl.load(p_{node.attr[0]} + ({index_str(node.attr[1])}) + {self.zero}, {self.mask}, other=0)"
        elif node.op is LoopOp.INDEX_EXPR:
            rhs = f"(({index_str(node.attr)}) + {self.zero}).to(tl.int64)"
        elif node.op is LoopOp.INDIRECT_LOAD:
            mask = self.mask if len(node.args) == 1 else f"{self.mask} & ({self.lookup(node.args[1])})"
            rhs = f"tl.load(p_{node.attr[0]} + {self.lookup(node.args[0])} + {self.zero}, {mask}, other=0)"
        elif node.op in L.ERROR_CHECKS:
            rhs = EXPR[node.op].format(*(self.lookup(a) for a in node.args), zero=self.zero, mask=self.mask)
        else:
            rhs = _math(node, [self.lookup(a) for a in node.args])
        name = f"t{self.counter[0]}"
        self.counter[0] += 1
        self.lines.append(f"{self.ind}{name} = {rhs}")
        self.names[node] = name


def _math(node, args) -> str:
    """One op's expression. Math on 16-bit floats runs in float32 and rounds once, as eager's
    kernels do (and Triton's interpreter has no bfloat16 arithmetic: it would use raw bits)."""
    if node.op is not LoopOp.WHERE and any(a.dtype in HALF_FLOATS for a in node.args):
        args = [WIDEN[a.dtype].format(s) if a.dtype in WIDEN else s for s, a in zip(args, node.args)]
        if node.dtype in HALF_FLOATS and node.op is not LoopOp.TO_DTYPE:
            template = BY_DTYPE.get((node.op, torch.float32), EXPR[node.op])
            return HALF_FLOATS[node.dtype].format(template.format(*args, T="tl.float32"))
    template = BY_DTYPE.get((node.op, node.dtype), EXPR[node.op])
    return template.format(*args, T=tl_dtype(node.dtype))


def render_kernel(kernel) -> str:
    args = kernel_args(kernel)
    params = [f"p_{a.buffer}" for a in args] + (["p_kiln_index_error"] if kernel_checks_indices(kernel) else [])
    params.append("xnumel")
    blocks = ["XBLOCK: tl.constexpr"]
    reduction = bool(kernel.inner)
    if reduction:
        params.append("rnumel")
        blocks.append("RBLOCK: tl.constexpr")
    persistent = configs.is_persistent(kernel)
    wide = needs_int64(kernel)
    form = "pointwise" if not reduction else "persistent reduction" if persistent else "looped reduction"
    lines = ["@triton.jit", f"def {kernel.name}({', '.join(params + blocks)}):",
             f"    # {form}{', int64 indices' if wide else ''}: outer {list(kernel.outer)}"
             + (f", inner {list(kernel.inner)}" if reduction else "")]
    ind = "    "
    pid = "tl.program_id(0).to(tl.int64)" if wide else "tl.program_id(0)"
    lines.append(f"{ind}xindex = {pid} * XBLOCK + tl.arange(0, XBLOCK){'[:, None]' if reduction else ''}")
    lines.append(f"{ind}xmask = xindex < xnumel")
    lines.append(f"{ind}xzero = xindex * 0")
    _unflatten(lines, ind, "xindex", kernel.xsyms)
    xscope = Scope(lines, ind, "xmask", "xzero")
    rscope = None
    if persistent:
        _r_prologue(kernel, lines, ind, "tl.arange(0, RBLOCK)[None, :]", wide)
        r_locals = frozenset(n.name for n in kernel.nodes if n.level == "r" and not n.reduction)
        rscope = Scope(lines, ind, "xrmask", "xrzero", xscope, frozenset(kernel.rsyms), r_locals)
    for g in kernel.groups:
        if g.level == "x":
            for n in g.nodes:
                _finish(xscope, n, xscope.emit(n.body), "xmask")
        elif persistent:
            for n in g.nodes:
                value = rscope.emit(n.body)
                if n.reduction:
                    _finish(xscope, n, _persistent_reduction(xscope, n, value), "xmask")
                else:
                    _finish(rscope, n, value, "xrmask")
                    # Later groups read it back at exactly its store index (scheduler rule): the
                    # whole row is still in registers, so they use the value instead of memory.
                    rscope.names[L.load(n.name, n.store, n.buffer.layout.dtype)] = f"v_{n.name}"
        else:
            _render_inner_loop(kernel, g, xscope, wide)
    sizes = size_params("\n".join(lines[2:]))
    if sizes:  # a graph of symbolic sizes: the symbols are arguments after the element counts
        lines[1] = f"def {kernel.name}({', '.join(params + sizes + blocks)}):"
    return "\n".join(lines)


def _r_prologue(kernel, lines, ind, rindex, wide):
    lines.append(f"{ind}rindex = {rindex}" + (".to(tl.int64)" if wide else ""))
    lines.append(f"{ind}rmask = rindex < rnumel")
    lines.append(f"{ind}xrmask = xmask & rmask")
    lines.append(f"{ind}xrzero = xzero + rindex * 0")
    _unflatten(lines, ind, "rindex", kernel.rsyms)


def _finish(scope, n, value, mask):
    scope.lines.append(f"{scope.ind}v_{n.name} = {value}")
    if n.stored:
        scope.lines.append(f"{scope.ind}tl.store(p_{n.name} + ({index_str(n.store)}) + {scope.zero}, "
                           f"v_{n.name}, {mask})")


# -- reductions: each is a tuple of accumulators (one for sum/max, value+index for argmax, ...) --

def _accumulators(n):
    """[(name, initial value, Triton dtype)] for reduction node n (see ops.TritonReduction)."""
    red, elem = REDUCTION[n.reduction], n.body.dtype
    out = []
    for k, (init, dt) in enumerate(zip(red.init, red.dtypes)):
        dt = dt or tl_dtype(acc_dtype(n.reduction, elem))
        init = init.format(lowest=extreme(elem, True), highest=extreme(elem, False))
        out.append((f"acc_{n.name}" + (f"_{k}" if k else ""), init, dt))
    return out


def _lifted(n, value) -> list[str]:
    """The element `value` as one entry per accumulator, in the accumulators' dtypes."""
    red = REDUCTION[n.reduction]
    out = []
    for lift, (_, _, dt) in zip(red.lift, _accumulators(n)):
        expr = lift.format(v=value, r="rindex", T=dt)
        typed = "{T}" in lift or (lift == "{v}" and dt == tl_dtype(n.body.dtype))
        widen = lift == "{v}" and dt == "tl.float32" and n.body.dtype in WIDEN
        out.append(expr if typed else WIDEN[n.body.dtype].format(expr) if widen else f"({expr}).to({dt})")
    return out


def _reduce_lanes(scope, n, lanes: list[str]) -> str:
    """Reduce the lanes (axis 1) of the accumulators: an [XBLOCK, 1] value in the buffer's dtype."""
    scope.lines.append(f"{scope.ind}r_{n.name} = {REDUCTION[n.reduction].final.format(*lanes)}")
    dtype = n.buffer.layout.dtype
    if dtype in HALF_FLOATS:  # rounds to nearest even (the interpreter's bfloat16 cast truncates)
        return HALF_FLOATS[dtype].format(f"r_{n.name}[:, None]")
    return f"r_{n.name}[:, None].to({tl_dtype(dtype)})"


def _persistent_reduction(scope, n, value) -> str:
    lanes = [f"tl.where(xrmask, {v}, tl.full([XBLOCK, RBLOCK], {init}, {dt}))"
             for v, (_, init, dt) in zip(_lifted(n, value), _accumulators(n))]
    return _reduce_lanes(scope, n, lanes)


def _render_inner_loop(kernel, group, outer: Scope, wide):
    ind = outer.ind
    reductions = [n for n in group.nodes if n.reduction]
    for n in reductions:
        for name, init, dt in _accumulators(n):
            outer.lines.append(f"{ind}{name} = tl.full([XBLOCK, RBLOCK], {init}, {dt})")
    body_ind = ind + "    "
    loop_lines: list[str] = []
    _r_prologue(kernel, loop_lines, body_ind, "roffset + tl.arange(0, RBLOCK)[None, :]", wide)
    inner = Scope(loop_lines, body_ind, "xrmask", "xrzero", outer, frozenset(kernel.rsyms),
                  frozenset(n.name for n in group.nodes))
    for n in group.nodes:
        v = inner.emit(n.body)
        if not n.reduction:
            _finish(inner, n, v, "xrmask")
            continue
        accs = [a[0] for a in _accumulators(n)]
        combined = f"{REDUCTION[n.reduction].combine}({', '.join(accs + _lifted(n, v))})"
        if len(accs) == 1:
            loop_lines.append(f"{body_ind}{accs[0]} = tl.where(xrmask, {combined}, {accs[0]})")
            continue
        loop_lines.append(f"{body_ind}{', '.join(a + '_next' for a in accs)} = {combined}")
        loop_lines.extend(f"{body_ind}{a} = tl.where(xrmask, {a}_next, {a})" for a in accs)
    outer.lines.append(f"{ind}for roffset in range(0, rnumel, RBLOCK):")  # after the hoisted lines
    outer.lines.extend(loop_lines)
    for n in reductions:
        _finish(outer, n, _reduce_lanes(outer, n, [a[0] for a in _accumulators(n)]), "xmask")


def render_module(kernel_sources) -> str:
    """The module Kiln imports: the header, then each kernel's source."""
    return HEADER + "\n\n" + "\n\n\n".join(kernel_sources) + "\n"
