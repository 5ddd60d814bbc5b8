"""Render one inner loop group of a kernel: the loops over r, their bodies, and reductions.

Reductions accumulate into arrays of KL independent slots along the innermost r loop (KL = a few
vector registers' worth), updated by a fixed-length `#pragma omp simd` loop that g++ vectorizes
into registers, plus one slot for the tail; the slots are folded into one value after the loop.
Several accumulators hide the add latency and need no reassociation flags. In split mode every
thread does this over its slice of the outermost r loop and writes its folded slot to a partial
array, which is folded in thread order after the parallel region.
"""
from __future__ import annotations

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.index import Sym, affine, strided_index, substitute
from kiln.inductor.ir.loop import LoopOp
from kiln.prims.symbolic import size_hint

from kiln.prims.meta import contiguous_strides

from .ops import REDUCTION, ctype, value_itemsize
from .scope import Scope, finish_value, index_str

VECTOR_BYTES = 64  # one AVX-512 register; on narrower machines g++ uses several
UNROLL = 4  # independent vectors per accumulator
MIN_LANES = 8  # shorter rows run the tail loop alone
ROUNDS_PER_SLOT = 8  # fewer vectors per accumulator when rows are shorter than this many rounds
CASCADE_BLOCK = 64  # sums move their lane slots into a second level every this many rounds


def _wide(dtype) -> str:
    return "double" if dtype.is_floating_point else ctype(dtype)


def lanes_for(nodes, extent) -> int:
    """Slots per accumulator: UNROLL vectors for long rows; fewer for short rows, where folding the
    slots costs more than the latency the extra vectors would hide."""
    vector = VECTOR_BYTES // max(value_itemsize(n.body.dtype) for n in nodes)
    kl = vector * UNROLL
    while kl > vector and kl * ROUNDS_PER_SLOT > extent:
        kl //= 2
    while kl > extent:
        kl //= 2
    return kl if kl >= MIN_LANES else 0


def _whole_lanes(extent, kl: int) -> str:
    """Where the vector loop over a row of `extent` ends: its largest multiple of kl."""
    if not kl:
        return "0"
    if isinstance(extent, int):
        return str(extent // kl * kl)
    return f"({extent}) / {kl} * {kl}"


def _prefetch_next_row(kernel, gi, split, last, kl, ind) -> list[str]:
    """In the second inner loop of a row, prefetch what the first loop of the next row streams in,
    so that loop finds it in cache: the DRAM reads overlap this loop's computing (exp, ...)."""
    if split or gi != 1 or kernel.groups[0].level != "r" or not kernel.xsyms:
        return []
    xl = kernel.xsyms[-1]
    r_o = Sym(f"{last.name}_o", last.extent)
    lines, seen = [], set()
    for n in kernel.groups[0].nodes:
        for m in L.walk(n.body):
            if m.op is not LoopOp.LOAD or m.attr[0] in seen or dict(affine(m.attr[1]).terms).get(last) != 1:
                continue
            seen.add(m.attr[0])
            step = max(1, 64 // m.dtype.itemsize)  # one prefetch per cache line
            for k in range(0, kl, step):
                nxt = substitute(m.attr[1], {xl: xl + 1, last: r_o + k})
                lines.append(f"{ind}  __builtin_prefetch(&p_{m.attr[0]}[{index_str(nxt)}]);")
    if not lines:
        return []
    return [f"{ind}if ({xl.name} + 1 < {xl.extent}) {{", *lines, f"{ind}}}"]


def render_inner_group(writer, group, outer: Scope, split: bool):
    kernel = writer.kernel
    gi = kernel.groups.index(group)
    rs = kernel.rsyms
    reductions = [n for n in group.nodes if n.reduction]
    last = rs[-1]
    kl = lanes_for(reductions, size_hint(last.extent)) if reductions else 0  # a symbolic row: always a tail loop
    ind = outer.indent
    out = outer.lines
    flag = writer.flag
    counted = [n for n in reductions if REDUCTION[n.reduction].counted]

    # Loop bounds: in split mode each thread takes a slice of the outermost r loop.
    chunked = rs[0]
    lo, hi = "0", str(last.extent)
    region = outer
    if split:
        for n in reductions:
            for k, (t, _) in enumerate(REDUCTION[n.reduction].accs):
                out.append(f"{ind}{t.format(T=ctype(n.body.dtype))} kp_{n.name}_{k}[KILN_MAX_THREADS];")
        if reductions:
            out.append(f"{ind}int kiln_nt{gi} = 1;")
            out.append(f"{ind}#pragma omp parallel num_threads(kiln_threads()){flag}")
            out.append(f"{ind}{{")
            ind += "  "
            out.append(f"{ind}const int kiln_t = omp_get_thread_num(), kiln_n = omp_get_num_threads();")
            out.append(f"{ind}if (kiln_t == 0) kiln_nt{gi} = kiln_n;")
            align = max(kl, 1) if len(rs) == 1 else 1
            out.append(f"{ind}const int64_t kiln_lo = kiln_chunk({chunked.extent}, kiln_t, kiln_n, {align}), "
                       f"kiln_hi = kiln_chunk({chunked.extent}, kiln_t + 1, kiln_n, {align});")
            if len(rs) == 1:
                lo, hi = "kiln_lo", "kiln_hi"
            region = outer.child(out, ind, (), barrier=True)  # values computed in the region stay in it

    # Accumulators: KL lane slots + 1 tail slot.
    for n in reductions:
        spec = REDUCTION[n.reduction]
        for k, (t, init) in enumerate(spec.accs):
            t, init = t.format(T=ctype(n.body.dtype)), init.format(T=ctype(n.body.dtype))
            out.append(f"{ind}{t} acc_{n.name}_{k}[{kl + 1}];")
            out.append(f"{ind}for (int kiln_l = 0; kiln_l <= {kl}; ++kiln_l) acc_{n.name}_{k}[kiln_l] = {init};")
    if counted:
        out.append(f"{ind}int64_t kiln_cnt{gi}[2] = {{0, 0}};  // elements per lane slot, in the tail slot")
    cascaded = [n for n in reductions if REDUCTION[n.reduction].cascade] if kl else []
    for n in cascaded:  # a second level, in double: sums of blocks of CASCADE_BLOCK rounds (long sums)
        out.append(f"{ind}{_wide(n.body.dtype)} acc_{n.name}_h[{kl}] = {{}};")
    if cascaded:
        out.append(f"{ind}int kiln_blk{gi} = 0;")

    # The loops over r: outer r loops, then the innermost one (lanes + tail, or one simd loop).
    head_lines: list[str] = []
    mid = region.child(head_lines, ind + "  " * (len(rs) - 1), rs[:-1]) if len(rs) > 1 else region
    loop_head = []
    for d, s in enumerate(rs[:-1]):
        pragma = split and not reductions and d == 0
        if pragma:
            loop_head.append(f"{ind}#pragma omp parallel for{flag}")
        a, b = ("kiln_lo", "kiln_hi") if (split and reductions and d == 0) else ("0", str(s.extent))
        loop_head.append(f"{ind + '  ' * d}for (int64_t {s.name} = {a}; {s.name} < {b}; ++{s.name}) {{")
    lind = ind + "  " * (len(rs) - 1)
    locals_ = {n.name for n in group.nodes}
    flat_r = index_str(strided_index(rs, contiguous_strides([s.extent for s in rs])))
    inner_lines: list[str] = []

    def body(lines, indent, slot):
        scope = mid.child(lines, indent, {last}, locals_)
        for n in group.nodes:
            v = scope.emit(n.body)
            if n.reduction:
                spec = REDUCTION[n.reduction]
                at = slot(n) if callable(slot) else slot
                names = {c: f"acc_{n.name}_{k}[{at}]" for k, c in enumerate("abc"[:len(spec.accs)])}
                lines.append(indent + spec.update.format(**names, v=v, r=flat_r, w=f"kiln_w_{n.name}",
                                                         T=ctype(n.body.dtype)))
            else:
                finish_value(scope, n, v)

    if not reductions:
        pragma = "#pragma omp parallel for simd" if split and len(rs) == 1 else "#pragma omp simd"
        inner_lines.append(f"{lind}{pragma}{flag}")
        inner_lines.append(f"{lind}for (int64_t {last.name} = 0; {last.name} < {last.extent}; ++{last.name}) {{")
        body(inner_lines, lind + "  ", 0)
        inner_lines.append(f"{lind}}}")
    else:
        main_end = f"{lo} + ({hi} - {lo}) / {kl} * {kl}" if (kl and split) else _whole_lanes(last.extent, kl)
        if kl:
            inner_lines.append(f"{lind}for (int64_t {last.name}_o = {lo}; {last.name}_o < {main_end}; "
                               f"{last.name}_o += {kl}) {{")
            if counted:
                inner_lines.append(f"{lind}  ++kiln_cnt{gi}[0];")
                for n in counted:
                    t = ctype(n.body.dtype)
                    inner_lines.append(f"{lind}  const {t} kiln_w_{n.name} = {t}(1) / {t}(kiln_cnt{gi}[0]);")
            inner_lines.append(f"{lind}  #pragma omp simd{flag}")
            inner_lines.append(f"{lind}  for (int64_t kiln_l = 0; kiln_l < {kl}; ++kiln_l) {{")
            inner_lines.append(f"{lind}    const int64_t {last.name} = {last.name}_o + kiln_l;")
            body(inner_lines, lind + "    ", "kiln_l")
            inner_lines.append(f"{lind}  }}")
            inner_lines.extend(_prefetch_next_row(kernel, gi, split, last, kl, lind + "  "))
            if cascaded:
                inner_lines.append(f"{lind}  if (++kiln_blk{gi} == {CASCADE_BLOCK}) {{")
                inner_lines.append(f"{lind}    kiln_blk{gi} = 0;")
                for n in cascaded:
                    a, h = f"acc_{n.name}_0", f"acc_{n.name}_h"
                    inner_lines.append(f"{lind}    for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) "
                                       f"{{ {h}[kiln_l] += {a}[kiln_l]; {a}[kiln_l] = 0; }}")
                inner_lines.append(f"{lind}  }}")
            inner_lines.append(f"{lind}}}")
        if not kl or split or not isinstance(last.extent, int) or last.extent % kl:
            start = main_end if kl else lo
            inner_lines.append(f"{lind}for (int64_t {last.name} = {start}; {last.name} < {hi}; ++{last.name}) {{")
            if counted:
                inner_lines.append(f"{lind}  ++kiln_cnt{gi}[1];")
                for n in counted:
                    t = ctype(n.body.dtype)
                    inner_lines.append(f"{lind}  const {t} kiln_w_{n.name} = {t}(1) / {t}(kiln_cnt{gi}[1]);")
            spread = f"{last.name} - ({start})" if kl else "0"  # tail elements spread over the lane slots
            body(inner_lines, lind + "  ", lambda n: kl if REDUCTION[n.reduction].counted else spread)
            inner_lines.append(f"{lind}}}")
    closers = [f"{ind + '  ' * d}}}" for d in reversed(range(len(rs) - 1))]
    out.extend(loop_head + head_lines + inner_lines + closers)

    # Fold the slots (then, in split mode, the threads' partials) and name the results.
    for n in cascaded:
        out.append(f"{ind}for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) acc_{n.name}_0[kiln_l] = "
                   f"static_cast<{ctype(n.body.dtype)}>(acc_{n.name}_h[kiln_l] + acc_{n.name}_0[kiln_l]);")
    for n in reductions:
        spec = REDUCTION[n.reduction]
        arrays = {c: f"acc_{n.name}_{k}" for k, c in enumerate("ABC"[:len(spec.accs)])}
        if spec.counted:
            out.append(f"{ind}for (int kiln_l = 0; kiln_l < {kl}; ++kiln_l) {arrays['C']}[kiln_l] = kiln_cnt{gi}[0];")
            out.append(f"{ind}{arrays['C']}[{kl}] = kiln_cnt{gi}[1];")
        out.append(f"{ind}{spec.fold.format(n=kl + 1, **arrays)};")
        if split:
            for k in range(len(spec.accs)):
                out.append(f"{ind}kp_{n.name}_{k}[kiln_t] = acc_{n.name}_{k}[0];")
    if split and reductions:
        ind = ind[:-2]
        out.append(f"{ind}}}")
    for n in reductions:
        spec = REDUCTION[n.reduction]
        prefix = "kp" if split else "acc"
        arrays = {c: f"{prefix}_{n.name}_{k}" for k, c in enumerate("ABC"[:len(spec.accs)])}
        if split:
            out.append(f"{ind}{spec.fold.format(n=f'kiln_nt{gi}', **arrays)};")
        finish_value(outer, n, spec.result.format(**arrays, i=0))
