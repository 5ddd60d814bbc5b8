"""Render a FusedKernel as a Triton kernel: the same loop groups as C++, as blocks of lanes.

Pointwise kernels are 1-D over the flattened outer range. Reduction kernels are 2-D tiles
(XBLOCK rows x RBLOCK lanes); every inner loop group walks the row in RBLOCK steps, so
reductions are looped (one step when the row fits: persistent).
"""
from __future__ import annotations

from inductor.ir import loop as L
from inductor.ir.index import Affine, FloorDiv, Mod, Sym, syms_of
from inductor.ir.loop import LoopNode, LoopOp, ReductionType
from prims import UnsupportedGraph

from ..kernel_args import kernel_args
from .ops import BY_DTYPE, EXPR, REDUCTION, TL_DTYPES, extreme, literal, tl_dtype

HEADER = """import triton
import triton.language as tl
from codegen.triton import device_math as km
"""


def index_str(x) -> str:
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, FloorDiv):
        return f"(({index_str(x.arg)}) // {x.div})"
    if isinstance(x, Mod):
        return f"(({index_str(x.arg)}) % {x.mod})"
    assert isinstance(x, Affine)
    parts = [index_str(t) if c == 1 else f"{c}*{index_str(t)}" for t, c in x.terms]
    if x.const or not parts:
        parts.append(str(x.const))
    return " + ".join(parts)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _next_pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def launch_config(kernel) -> dict:
    """Block sizes from the sizes: lanes cover a row up to 1024; rows fill a block up to 1024 lanes."""
    xnumel = max(_numel(kernel.outer), 1)  # block sizes stay >= 1 even for empty launches
    if not kernel.inner:
        return {"XBLOCK": min(1024, _next_pow2(xnumel))}
    rblock = min(1024, _next_pow2(_numel(kernel.inner)))
    return {"XBLOCK": max(1, min(_next_pow2(xnumel), 1024 // rblock)), "RBLOCK": rblock}


def _unflatten(lines, ind, flat, syms):
    stride = 1
    parts = []
    for s in reversed(syms):
        expr = f"({flat} // {stride})" if stride != 1 else flat
        parts.append(f"{ind}{s.name} = {expr} % {s.extent}" if s is not syms[0] else f"{ind}{s.name} = {expr}")
        stride *= s.extent
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
            rhs = f"tl.full([1], {literal(node.attr, node.dtype)}, {tl_dtype(node.dtype)})"
        elif node.op is LoopOp.LOAD:
            rhs = f"tl.load(p_{node.attr[0]} + ({index_str(node.attr[1])}) + {self.zero}, {self.mask}, other=0)"
        elif node.op is LoopOp.INDEX_EXPR:
            rhs = f"(({index_str(node.attr)}) + {self.zero}).to(tl.int64)"
        else:
            template = BY_DTYPE.get((node.op, node.dtype), EXPR[node.op])
            rhs = template.format(*(self.lookup(a) for a in node.args), T=tl_dtype(node.dtype))
        name = f"t{self.counter[0]}"
        self.counter[0] += 1
        self.lines.append(f"{self.ind}{name} = {rhs}")
        self.names[node] = name


def render_kernel(kernel) -> str:
    args = kernel_args(kernel)
    params = [f"p_{a.buffer}" for a in args] + ["xnumel"]
    blocks = ["XBLOCK: tl.constexpr"]
    reduction = bool(kernel.inner)
    if reduction:
        params.append("rnumel")
        blocks.append("RBLOCK: tl.constexpr")
    lines = ["@triton.jit", f"def {kernel.name}({', '.join(params + blocks)}):"]
    ind = "    "
    shape_x = "[:, None]" if reduction else ""
    lines.append(f"{ind}xindex = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK){shape_x}")
    lines.append(f"{ind}xmask = xindex < xnumel")
    lines.append(f"{ind}xzero = xindex * 0")
    _unflatten(lines, ind, "xindex", kernel.xsyms)
    scope = Scope(lines, ind, "xmask", "xzero")
    for g in kernel.groups:
        if g.level == "x":
            for n in g.nodes:
                _finish(scope, n, scope.emit(n.body), "xmask")
        else:
            _render_inner_loop(kernel, g, scope)
    return "\n".join(lines)


def _finish(scope, n, value, mask):
    scope.lines.append(f"{scope.ind}v_{n.name} = {value}")
    if n.stored:
        scope.lines.append(f"{scope.ind}tl.store(p_{n.name} + ({index_str(n.store)}) + {scope.zero}, "
                           f"v_{n.name}, {mask})")


def _render_inner_loop(kernel, group, outer: Scope):
    ind = outer.ind
    reductions = [n for n in group.nodes if n.reduction]
    for n in reductions:
        dt = n.body.dtype
        init = REDUCTION[n.reduction][0].format(lowest=extreme(dt, True), highest=extreme(dt, False))
        outer.lines.append(f"{ind}acc_{n.name} = tl.full([XBLOCK, RBLOCK], {init}, {tl_dtype(dt)})")
        if n.reduction in (ReductionType.ARGMAX, ReductionType.ARGMIN):
            outer.lines.append(f"{ind}acc_{n.name}_i = tl.full([XBLOCK, RBLOCK], rnumel, tl.int64)")
        if n.reduction is ReductionType.WELFORD:
            outer.lines.append(f"{ind}acc_{n.name}_m2 = tl.full([XBLOCK, RBLOCK], 0, {tl_dtype(dt)})")
            outer.lines.append(f"{ind}acc_{n.name}_n = tl.full([XBLOCK, RBLOCK], 0, {tl_dtype(dt)})")
    body_ind = ind + "    "
    loop_lines = [f"{body_ind}rindex = roffset + tl.arange(0, RBLOCK)[None, :]",
                  f"{body_ind}rmask = rindex < rnumel",
                  f"{body_ind}xrmask = xmask & rmask",
                  f"{body_ind}xrzero = xzero + rindex * 0"]
    _unflatten(loop_lines, body_ind, "rindex", kernel.rsyms)
    inner = Scope(loop_lines, body_ind, "xrmask", "xrzero", outer, frozenset(kernel.rsyms),
                  frozenset(n.name for n in group.nodes))
    for n in group.nodes:
        v = inner.emit(n.body)
        acc = f"acc_{n.name}"
        if n.reduction in (ReductionType.ARGMAX, ReductionType.ARGMIN):
            combine = REDUCTION[n.reduction][1]
            loop_lines.append(f"{body_ind}{acc}_n, {acc}_in = {combine}({acc}, {acc}_i, {v}, rindex.to(tl.int64))")
            loop_lines.append(f"{body_ind}{acc} = tl.where(xrmask, {acc}_n, {acc})")
            loop_lines.append(f"{body_ind}{acc}_i = tl.where(xrmask, {acc}_in, {acc}_i)")
        elif n.reduction is ReductionType.WELFORD:
            loop_lines.append(f"{body_ind}{acc}_n1 = {acc}_n + 1")
            loop_lines.append(f"{body_ind}{acc}_d = {v} - {acc}")
            loop_lines.append(f"{body_ind}{acc}_mean = {acc} + {acc}_d / {acc}_n1")
            loop_lines.append(f"{body_ind}{acc}_m2 = tl.where(xrmask, {acc}_m2 + {acc}_d * ({v} - {acc}_mean), {acc}_m2)")
            loop_lines.append(f"{body_ind}{acc} = tl.where(xrmask, {acc}_mean, {acc})")
            loop_lines.append(f"{body_ind}{acc}_n = tl.where(xrmask, {acc}_n1, {acc}_n)")
        elif n.reduction:
            combine = REDUCTION[n.reduction][1].format(acc=acc, v=v)
            loop_lines.append(f"{body_ind}{acc} = tl.where(xrmask, {combine}, {acc})")
        else:
            _finish(inner, n, v, "xrmask")
    outer.lines.append(f"{ind}for roffset in range(0, rnumel, RBLOCK):")  # after the hoisted lines
    outer.lines.extend(loop_lines)
    for n in reductions:
        final = REDUCTION[n.reduction][2].format(acc=f"acc_{n.name}")
        _finish(outer, n, f"({final})[:, None].to({tl_dtype(n.buffer.layout.dtype)})", "xmask")


def render_module(kernels) -> str:
    return HEADER + "\n\n" + "\n\n\n".join(render_kernel(k) for k in kernels) + "\n"
