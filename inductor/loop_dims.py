"""Loop-dimension rewrites on scheduled kernels: fitting a buffer's ranges onto a kernel's loops,
and merging adjacent loops that every index walks as one (so [4096, 4096] reduced over both dims
is one loop of 16M, and a pointwise kernel over a contiguous [N, 3] is one flat loop).

Both work by substituting index expressions: a loop variable becomes `(flat // stride) % extent`
of the other loops, which the index simplifier folds back to affine terms when the dims line up.
"""
from __future__ import annotations

from kiln.prims.meta import contiguous_strides

from .ir import loop as L
from .ir.buffers import loop_syms
from .ir.index import Affine, FloorDiv, Mod, Sym, affine, floordiv, mod, strided_index, substitute
from .ir.loop import LoopNode, LoopOp


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _is_affine(x) -> bool:
    return isinstance(x, (int, Sym)) or (isinstance(x, Affine) and all(isinstance(t, Sym) for t, _ in x.terms))


def fit(own_syms, targets) -> dict | None:
    """Map a buffer's loop variables onto kernel variables, ignoring size-1 dims; None if they differ.

    Equal extents map one to one; otherwise, with equal element counts, each variable becomes its
    position in the kernel's flat iteration, accepted only when that is affine (a reshape whose
    boundaries line up, e.g. [32, 256, 256] onto [4, 8, 256] x [256])."""
    own = [s for s in own_syms if s.extent != 1]
    tgt = [t for t in targets if t.extent != 1]
    if [s.extent for s in own] == [t.extent for t in tgt]:
        return dict(zip(own, tgt))  # size-1 variables are 0 wherever they appear
    if not own or numel(s.extent for s in own) != numel(t.extent for t in tgt):
        return None
    flat = strided_index(tgt, contiguous_strides([t.extent for t in tgt]))
    mapping = {}
    for s, stride in zip(own, contiguous_strides([s.extent for s in own])):
        e = mod(floordiv(flat, stride), s.extent)
        if not _is_affine(e):
            return None
        mapping[s] = e
    return mapping


def subst_body(body: LoopNode, mapping: dict) -> LoopNode:
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


def _indices(kernel):
    for n in kernel.nodes:
        yield n.store
        for m in L.walk(n.body):
            if m.op is LoopOp.LOAD:
                yield m.attr[1]
            elif m.op is LoopOp.INDEX_EXPR:
                yield m.attr


def _coeffs(x) -> tuple[dict, set]:
    """(coefficient of each loop variable at the top level, variables found inside // or %)."""
    a = affine(x)
    top, nested = {}, set()
    for t, c in a.terms:
        if isinstance(t, Sym):
            top[t] = c
        else:
            _nested_syms(t, nested)
    return top, nested


def _nested_syms(t, out):
    if isinstance(t, Sym):
        out.add(t)
    elif isinstance(t, (FloorDiv, Mod)):
        for u, _ in t.arg.terms:
            _nested_syms(u, out)


def _runs(syms, infos) -> list[list]:
    """Consecutive variables every index walks as one: coeff(a) == coeff(b) * extent(b)."""
    runs = [[syms[0]]] if syms else []
    for a, b in zip(syms, syms[1:]):
        ok = all(a not in nested and b not in nested and top.get(a, 0) == top.get(b, 0) * b.extent
                 for top, nested in infos)
        if ok:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def merge_dims(kernel) -> bool:
    """Merge runs of adjacent outer (and inner) loops in place; True if anything changed."""
    infos = [_coeffs(x) for x in _indices(kernel)]
    outer_runs, inner_runs = _runs(list(kernel.xsyms), infos), _runs(list(kernel.rsyms), infos)
    if all(len(r) == 1 for r in outer_runs + inner_runs):
        return False
    new_outer = tuple(numel(s.extent for s in run) for run in outer_runs)
    new_inner = tuple(numel(s.extent for s in run) for run in inner_runs)
    mapping = {}
    for runs, new_syms in ((outer_runs, loop_syms("x", new_outer)), (inner_runs, loop_syms("r", new_inner))):
        for run, m in zip(runs, new_syms):
            stride = 1
            for s in reversed(run):
                mapping[s] = mod(floordiv(m, stride), s.extent)
                stride *= s.extent
    kernel.outer, kernel.inner = new_outer, new_inner
    for n in kernel.nodes:
        n.body = subst_body(n.body, mapping)
        n.store = substitute(n.store, mapping)
    return True
