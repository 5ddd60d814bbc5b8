"""Column reductions: rows that lie across memory (x.sum(0) on a contiguous matrix).

Walking such a row is a strided loop. Instead the innermost outer loop is cut into blocks of KL
neighbouring rows, in parallel; for each block the r loops run outermost and a fixed-length
`#pragma omp simd` loop over the block's lanes does each row's step, so every load is contiguous.
Each lane is one row's own accumulator (no folding); every value of the kernel is an array with
one entry per lane.
"""
from __future__ import annotations

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.index import FloorDiv, Mod, Sym, affine, strided_index
from kiln.inductor.ir.loop import LoopOp
from kiln.prims.meta import contiguous_strides
from kiln.prims.symbolic import size_hint

from .ops import REDUCTION, ctype, store_value
from .scope import Scope, index_str, reduction_result

LANES = 64  # rows per block: four 16-float vectors
MIN_ROWS = 16
CASCADE_BLOCK = 64


def columns_fit(kernel) -> bool:
    """Do the kernel's reductions walk memory along the last outer loop rather than along r?"""
    if not kernel.inner or not kernel.outer or size_hint(kernel.outer[-1]) < MIN_ROWS or any(n.scratch for n in kernel.nodes):
        return False
    xl, rl = kernel.xsyms[-1], kernel.rsyms[-1]
    rsyms = set(kernel.rsyms)
    strided = False
    for n in kernel.nodes:
        for m in L.walk(n.body):
            if m.op is not LoopOp.LOAD:
                continue
            coeffs = dict(affine(m.attr[1]).terms)
            if not rsyms & set(coeffs) and not any(_nested(t) & rsyms for t in coeffs):
                continue  # does not move with r
            if coeffs.get(xl, 0) not in (0, 1) or any(not isinstance(t, Sym) for t in coeffs):
                return False  # neighbouring rows not side by side in memory
            strided = strided or (coeffs.get(xl) == 1 and coeffs.get(rl, 0) != 1)
    return strided


def _nested(t) -> set:
    if isinstance(t, Sym):
        return {t}
    if isinstance(t, (FloorDiv, Mod)):
        return {u for s, _ in t.arg.terms for u in _nested(s)}
    return set()


def render_columns(writer, parallel: bool) -> list[str]:
    kernel, lines, flag = writer.kernel, writer.lines, writer.flag
    xs, rs = kernel.xsyms, kernel.rsyms
    xl = xs[-1]
    kl = LANES
    ind = "  "
    head = list(xs[:-1])
    if parallel:
        lines.append(f"{ind}#pragma omp parallel for collapse({len(head) + 1}){flag}")
    for s in head:
        lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
        ind += "  "
    lines.append(f"{ind}for (int64_t {xl.name}_b = 0; {xl.name}_b < {xl.extent}; {xl.name}_b += {kl}) {{")
    ind += "  "
    lines.append(f"{ind}const int64_t kiln_n = {xl.extent} - {xl.name}_b < {kl} ? {xl.extent} - {xl.name}_b : {kl};")
    for n in kernel.nodes:  # every value of the kernel, one entry per lane
        lines.append(f"{ind}{ctype(n.buffer.layout.dtype)} v_{n.name}[{kl}];")
    block = Scope(lines, ind, local_suffix="[kiln_l]")
    names = frozenset(n.name for n in kernel.nodes)
    flat_r = index_str(strided_index(rs, contiguous_strides([s.extent for s in rs])))
    for gi, group in enumerate(kernel.groups):
        if group.level == "x":
            lines.extend(_lane_loop(block, ind, xl, names, group.nodes, flag))
            continue
        reductions = [n for n in group.nodes if n.reduction]
        counted = [n for n in reductions if REDUCTION[n.reduction].counted]
        cascaded = [n for n in reductions if REDUCTION[n.reduction].cascade]
        for n in reductions:
            t = ctype(n.body.dtype)
            for k, (ct, init) in enumerate(REDUCTION[n.reduction].accs):
                lines.append(f"{ind}{ct.format(T=t)} acc_{n.name}_{k}[{kl}];")
                lines.append(f"{ind}for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) acc_{n.name}_{k}[kiln_l] = {init.format(T=t)};")
        for n in cascaded:
            lines.append(f"{ind}double acc_{n.name}_h[{kl}] = {{}};")
        if counted:
            lines.append(f"{ind}int64_t kiln_cnt{gi} = 0;")
        if cascaded:
            lines.append(f"{ind}int kiln_blk{gi} = 0;")
        rind = ind + "  " * len(rs)
        heads = [f"{ind + '  ' * d}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{" for d, s in enumerate(rs)]
        r_lines: list[str] = []  # r-invariant work lands before the r loops, r-varying work inside
        r_scope = block.child(r_lines, rind, rs)
        if counted:
            r_lines.append(f"{rind}++kiln_cnt{gi};")
            for n in counted:
                t = ctype(n.body.dtype)
                r_lines.append(f"{rind}const {t} kiln_w_{n.name} = {t}(1) / {t}(kiln_cnt{gi});")
        loop = _lane_loop(r_scope, rind, xl, names, group.nodes, flag, flat_r=flat_r)
        if cascaded:
            loop.append(f"{rind}if (++kiln_blk{gi} == {CASCADE_BLOCK}) {{")
            loop.append(f"{rind}  kiln_blk{gi} = 0;")
            for n in cascaded:
                a, h = f"acc_{n.name}_0", f"acc_{n.name}_h"
                loop.append(f"{rind}  for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) {{ {h}[kiln_l] += {a}[kiln_l]; {a}[kiln_l] = 0; }}")
            loop.append(f"{rind}}}")
        lines.extend(heads + r_lines + loop + [f"{ind + '  ' * d}}}" for d in reversed(range(len(rs)))])
        for n in cascaded:
            lines.append(f"{ind}for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) acc_{n.name}_0[kiln_l] = "
                         f"static_cast<{ctype(n.body.dtype)}>(acc_{n.name}_h[kiln_l] + acc_{n.name}_0[kiln_l]);")
        results = [(n, REDUCTION[n.reduction].result.format(
            **{c: f"acc_{n.name}_{k}" for k, c in enumerate("ABC"[:len(REDUCTION[n.reduction].accs)])}, i="kiln_l"))
            for n in reductions]
        lines.extend(_lane_loop(block, ind, xl, names, [], flag, results=results))
    ind = ind[:-2]
    lines.append(f"{ind}}}")
    for _ in head:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    return lines


def _lane_loop(parent: Scope, ind, xl, names, nodes, flag, flat_r=None, results=()) -> list[str]:
    """`#pragma omp simd` over the block's lanes: each node's value (reductions: their update), then
    `results`, (node, expression) pairs naming a finished reduction. Work invariant across lanes is
    hoisted into `parent` (and beyond) as it is emitted."""
    body: list[str] = []
    lane = parent.child(body, ind + "  ", {xl}, names)
    for n in nodes:
        v = lane.emit(n.body)
        if n.reduction:
            spec = REDUCTION[n.reduction]
            slots = {c: f"acc_{n.name}_{k}[kiln_l]" for k, c in enumerate("abc"[:len(spec.accs)])}
            body.append(f"{ind}  " + spec.update.format(**slots, v=v, r=flat_r, w=f"kiln_w_{n.name}",
                                                        T=ctype(n.body.dtype)))
        else:
            _finish(body, ind + "  ", n, v)
    for n, value in results:
        _finish(body, ind + "  ", n, reduction_result(n, value))
    return [f"{ind}#pragma omp simd{flag}", f"{ind}for (int64_t kiln_l = 0; kiln_l < kiln_n; ++kiln_l) {{",
            f"{ind}  const int64_t {xl.name} = {xl.name}_b + kiln_l;", *body, f"{ind}}}"]


def _finish(body, ind, n, value):
    body.append(f"{ind}v_{n.name}[kiln_l] = {value};")
    if n.stored:
        body.append(f"{ind}p_{n.name}[{index_str(n.store)}] = {store_value(n.buffer.layout.dtype, f'v_{n.name}[kiln_l]')};")
