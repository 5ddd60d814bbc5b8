"""Render a FusedKernel as one C++ function: OpenMP over the outer loops, inner loops per group."""
from __future__ import annotations

from inductor.ir import loop as L
from inductor.ir.index import Affine, FloorDiv, Mod, Sym, syms_of
from inductor.ir.loop import LoopNode, LoopOp
from prims import UnsupportedGraph

from ..kernel_args import kernel_args
from . import index_check
from .ops import CTYPES, EXPR, REDUCTION, ctype, literal

PARALLEL_MIN_WORK = 1 << 15  # below this many elements, threads cost more than they give


def index_str(x) -> str:
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, FloorDiv):
        return f"(({index_str(x.arg)}) / {x.div})"
    if isinstance(x, Mod):
        return f"(({index_str(x.arg)}) % {x.mod})"
    assert isinstance(x, Affine)
    parts = [index_str(t) if c == 1 else f"{c}*{index_str(t)}" for t, c in x.terms]
    if x.const or not parts:
        parts.append(str(x.const))
    return " + ".join(parts)


class Scope:
    """Temporaries of one C++ block; looks names up in enclosing blocks; hoists invariant work out."""

    def __init__(self, lines: list[str], indent: str, parent: "Scope | None" = None, loop_syms=frozenset(),
                 loop_locals=frozenset()):
        self.lines, self.indent, self.parent = lines, indent, parent
        self.loop_syms, self.loop_locals = loop_syms, loop_locals  # what varies inside this block
        self.names: dict[LoopNode, str] = {}
        self.counter = parent.counter if parent else [0]

    def lookup(self, node):
        s = self
        while s is not None:
            if node in s.names:
                return s.names[node]
            s = s.parent
        return None

    def varies(self, node: LoopNode) -> bool:
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
            target = self if (self.parent is None or self.varies(node)) else self.parent
            target._define(node)
        return self.lookup(root)

    def _define(self, node: LoopNode):
        if node.op is LoopOp.CONSTANT:
            self.names[node] = literal(node.attr, node.dtype)
            return
        if node.op is LoopOp.LOCAL:
            self.names[node] = f"v_{node.attr}"
            return
        if node.op is LoopOp.LOAD:
            rhs = f"p_{node.attr[0]}[{index_str(node.attr[1])}]"
        elif node.op is LoopOp.INDEX_EXPR:
            rhs = f"static_cast<int64_t>({index_str(node.attr)})"
        elif node.op is LoopOp.INDIRECT_LOAD:
            rhs = f"p_{node.attr[0]}[{self.lookup(node.args[0])}]"
            if len(node.args) > 1:  # masked: never read where the mask is false
                rhs = f"{self.lookup(node.args[1])} ? {rhs} : {literal(0, node.dtype)}"
        else:
            rhs = EXPR[node.op].format(*(self.lookup(a) for a in node.args), T=ctype(node.dtype))
        name = f"t{self.counter[0]}"
        self.counter[0] += 1
        self.lines.append(f"{self.indent}const {ctype(node.dtype)} {name} = {rhs};")
        self.names[node] = name


def render_kernel(kernel) -> str:
    for n in kernel.nodes:
        for m in L.walk(n.body):
            if m.dtype not in CTYPES:
                raise UnsupportedGraph(f"dtype {m.dtype} is not supported by the C++ backend yet")
    args = kernel_args(kernel)
    params = ", ".join(
        f"{'' if a.written else 'const '}{ctype(a.dtype)}* __restrict__ p_{a.buffer}" for a in args)
    lines = [f'extern "C" void {kernel.name}({params}) {{', *index_check.prologue(kernel)]
    xs = kernel.xsyms
    work = 1
    for s in kernel.outer + kernel.inner:
        work *= s
    ind = "  "
    if xs and work >= PARALLEL_MIN_WORK and len(xs) and _numel(kernel.outer) > 1:
        collapse = len(xs) if kernel.inner or len(xs) == 1 else len(xs) - 1
        lines.append(f"{ind}#pragma omp parallel for" + (f" collapse({collapse})" if collapse > 1 else "")
                     + index_check.omp_clause(kernel))
    for s in xs:
        lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
        ind += "  "
    scope = Scope(lines, ind)
    for g in kernel.groups:
        if g.level == "x":
            for n in g.nodes:
                _finish_value(scope, n, scope.emit(n.body))
        else:
            _render_inner_loop(kernel, g, scope)
    for _ in xs:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    lines.extend(index_check.epilogue(kernel))
    lines.append("}")
    return "\n".join(lines)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _finish_value(scope: Scope, n, value: str):
    """Name a node's value `v_<buffer>` and store it if anyone outside the kernel needs it."""
    t = ctype(n.buffer.layout.dtype)
    scope.lines.append(f"{scope.indent}const {t} v_{n.name} = {value};")
    if n.stored:
        scope.lines.append(f"{scope.indent}p_{n.name}[{index_str(n.store)}] = v_{n.name};")


def _render_inner_loop(kernel, group, outer: Scope):
    rs = kernel.rsyms
    reductions = [n for n in group.nodes if n.reduction]
    ind = outer.indent
    for n in reductions:
        for decl in REDUCTION[n.reduction].decls:
            outer.lines.append(ind + decl.format(T=ctype(n.body.dtype), acc=f"acc_{n.name}"))
    loop_lines: list[str] = []
    body_ind = ind + "  " * len(rs)
    inner = Scope(loop_lines, body_ind, outer, frozenset(rs), frozenset(n.name for n in group.nodes))
    rflat = index_str(_flat_r(rs))
    for n in group.nodes:
        v = inner.emit(n.body)
        if n.reduction:
            loop_lines.append(body_ind + REDUCTION[n.reduction].combine.format(acc=f"acc_{n.name}", v=v, r=rflat))
        else:
            _finish_value(inner, n, v)
    simd = _simd_pragma(reductions)
    simd = simd and simd + index_check.omp_clause(kernel)
    for d, s in enumerate(rs):
        if d == len(rs) - 1 and simd:
            outer.lines.append(ind + "  " * d + simd)
        outer.lines.append(ind + "  " * d + f"for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
    outer.lines.extend(loop_lines)
    for d in reversed(range(len(rs))):
        outer.lines.append(ind + "  " * d + "}")
    for n in reductions:
        _finish_value(outer, n, REDUCTION[n.reduction].final.format(acc=f"acc_{n.name}"))


def _flat_r(rs):
    out, stride = 0, 1
    for s in reversed(rs):
        out = out + s * stride
        stride *= s.extent
    return out


def _simd_pragma(reductions) -> str | None:
    clauses = []
    for n in reductions:
        omp = REDUCTION[n.reduction].omp
        if omp is None:
            return None  # argmax/argmin: first-index order must hold
        clauses.append(omp.format(acc=f"acc_{n.name}"))
    return " ".join(["#pragma omp simd", *clauses])


def render_source(kernels) -> str:
    from .ops import PREAMBLE

    from ..index_check import checks_indices
    from .index_check import SOURCE as INDEX_CHECK

    return PREAMBLE + (INDEX_CHECK if checks_indices(kernels) else "") + "\n" + "\n\n".join(render_kernel(k) for k in kernels) + "\n"
