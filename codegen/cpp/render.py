"""Render a FusedKernel as one C++ function.

Four loop structures, picked from the kernel's sizes and access pattern:
- pointwise (no inner loops): `#pragma omp parallel for` over the outer loops, the innermost one
  `#pragma omp simd`; a memory-bound kernel storing more than any cache holds runs its innermost
  loop in chunks and writes them with streaming stores (no read of the target lines first);
- rows: one OpenMP iteration per outer point (row), its loop groups inside (reduce.py);
- split rows: few, long rows; the outer loops run in order and every inner loop group is split
  across threads, each folding its slice into a partial result that is combined in thread order;
- columns: rows that lie across memory (x.sum(0)): blocks of neighbouring rows run in parallel,
  r loops outermost, one vector lane per row (columns.py).

A kernel that uses math with a domain-limited fast path (ops.DOMAIN) is a template on KILN_EXACT:
the fast instantiation also computes `kiln_big`, the OR of every out-of-domain check, and when any
input was out of domain the exported function runs the KILN_EXACT (libm) instantiation instead.
Kernels never write a buffer they read, so running one twice gives the same result.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.index import affine, syms_of
from kiln.prims import UnsupportedGraph

from ..index_check import checks_indices
from ..kernel_args import kernel_args, size_params
from . import index_check
from .ops import CTYPES, storage_ctype
from .columns import columns_fit, render_columns
from .reduce import render_inner_group
from .scope import Scope, finish_value, index_str, uses_domain_ops
from kiln.prims.symbolic import is_symbolic, size_hint

PARALLEL_MIN_WORK = 1 << 15  # below this many elements, threads cost more than they give
MIN_PARALLEL_ROWS = 64  # fewer rows than this cannot keep the cores busy ...
SPLIT_MIN_ROW = 1 << 12  # ... so rows at least this long are split across threads instead
STREAM_MIN_BYTES = 16 << 20  # pointwise kernels storing this much (past any cache) stream their stores
STREAM_CHUNK = 64  # floats per streamed chunk (kiln_stream64)


def _numel(shape) -> int:
    """Elements of a loop nest, at the example sizes when symbolic: for choosing a loop structure
    (every structure is right for every size), never for what a loop computes."""
    return size_hint(_count(shape))


def _count(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def parallel_if(kernel) -> str:
    """A kernel of symbolic sizes decides at run time whether its threads pay (an OpenMP `if`
    clause on its parallel regions); a static one decided at compile time. The clause names
    `parallel`: on a combined `parallel for simd`, a bare `if` also applies to `simd` (OpenMP 5),
    and g++ then runs the loop unvectorised whenever it is false (8x slower serial loops)."""
    work = _count(kernel.outer + kernel.inner)
    return f" if(parallel: ({work!r}) >= {PARALLEL_MIN_WORK})" if is_symbolic(work) else ""


def streamed_nodes(kernel) -> set[str]:
    """The stored buffers a pointwise kernel streams: float32 ones written contiguously along its
    innermost loop, when that loop runs in whole chunks, they add up to more than any cache holds,
    and the kernel is memory-bound (no transcendental math: with it, streaming gains nothing)."""
    if kernel.inner or not kernel.xsyms or not isinstance(kernel.xsyms[-1].extent, int) \
            or kernel.xsyms[-1].extent % STREAM_CHUNK:  # whole chunks only
        return set()
    if any(m.op in L.TRANSCENDENTAL for n in kernel.nodes for m in L.walk(n.body)):
        return set()
    xl = kernel.xsyms[-1]
    names = set()
    for n in kernel.nodes:
        terms = dict(affine(n.store).terms) if n.stored else {}
        if n.stored and n.buffer.layout.dtype == torch.float32 and terms.get(xl) == 1 \
                and not any(xl in syms_of(t) for t in terms if t != xl):  # one contiguous run
            names.add(n.name)
    return names if len(names) * _numel(kernel.outer) * 4 >= STREAM_MIN_BYTES else set()


def loop_mode(kernel) -> str:
    """'pointwise', 'rows', 'split' (few long rows, each loop split across threads), 'columns'
    (rows across memory: columns.py), 'serial' or 'serial columns'."""
    # symbolic sizes: the parallel structure, its threads switched on at run time (parallel_if)
    work = PARALLEL_MIN_WORK if is_symbolic(_count(kernel.outer + kernel.inner)) else _numel(kernel.outer + kernel.inner)
    if columns_fit(kernel):
        return "columns" if work >= PARALLEL_MIN_WORK else "serial columns"
    if work < PARALLEL_MIN_WORK:
        return "serial"
    if not kernel.inner:
        return "pointwise"
    rows = _numel(kernel.outer)
    if rows < MIN_PARALLEL_ROWS and _numel(kernel.inner) >= SPLIT_MIN_ROW:
        return "split"
    return "rows"


class KernelWriter:
    def __init__(self, kernel):
        self.kernel = kernel
        self.domain = uses_domain_ops(kernel)
        self.mode = loop_mode(kernel)
        self.flag = (" reduction(|:kiln_big)" if self.domain else "") + index_check.omp_clause(kernel)
        self.lines: list[str] = []

    def body(self) -> list[str]:
        k, lines, ind = self.kernel, self.lines, "  "
        xs = k.xsyms
        if self.domain:
            lines.append(f"{ind}int kiln_big = 0;")
        lines.extend(index_check.prologue(k))
        if not k.inner:
            streamed = streamed_nodes(k) if self.mode == "pointwise" else set()
            if streamed:
                self._streamed(ind, streamed)
            else:
                self._pointwise(ind, parallel=self.mode == "pointwise")
            return lines
        if self.mode.endswith("columns"):
            return render_columns(self, parallel=self.mode == "columns")
        if self.mode == "rows" and xs and _numel(k.outer) > 1:
            collapse = f" collapse({len(xs)})" if len(xs) > 1 else ""
            lines.append(f"{ind}#pragma omp parallel for{collapse}{self.flag}")
        for s in xs:
            lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
            ind += "  "
        scope = Scope(lines, ind)
        self._scratch(scope)
        for g in k.groups:
            if g.level == "x":
                for n in g.nodes:
                    finish_value(scope, n, scope.emit(n.body))
            else:
                render_inner_group(self, g, scope, split=self.mode == "split")
        for _ in xs:
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        return lines

    def _pointwise(self, ind, parallel: bool):
        """Outer loops in parallel (all but the innermost when there are enough), innermost vectorized.
        Work no loop variable touches (an optimizer's bias correction: pow of a 0-dim step) is done
        once, before the loops and their parallel region, instead of per element."""
        k, lines = self.kernel, self.lines
        xs = k.xsyms
        start, before = len(lines), []
        outside = Scope(before, ind)
        head = xs[:-1] if _numel(k.outer[:-1]) >= 16 or not parallel else ()
        if head and parallel:
            collapse = f" collapse({len(head)})" if len(head) > 1 else ""
            lines.append(f"{ind}#pragma omp parallel for{collapse}{self.flag}")
        for s in head:
            lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
            ind += "  "
        tail = xs[len(head):]
        if tail:
            pragma = "#pragma omp parallel for simd" if parallel and not head else "#pragma omp simd"
            collapse = f" collapse({len(tail)})" if len(tail) > 1 else ""
            lines.append(f"{ind}{pragma}{collapse}{self.flag}")
        for s in tail:
            lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
            ind += "  "
        scope = outside.child(lines, ind, xs, loop_locals={n.name for n in k.nodes})
        for g in k.groups:
            for n in g.nodes:
                finish_value(scope, n, scope.emit(n.body))
        for _ in xs:
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        lines[start:start] = before

    def _streamed(self, ind, streamed: set[str]):
        """A pointwise kernel whose innermost loop runs in chunks of STREAM_CHUNK: the streamed
        buffers' values go to aligned stack chunks, which kiln_stream64 writes out."""
        k, lines = self.kernel, self.lines
        xs, xl = k.xsyms, k.xsyms[-1]
        stored = [n for n in k.nodes if n.name in streamed]
        lines.append(f"{ind}#pragma omp parallel{self.flag}")
        lines.append(f"{ind}{{")
        ind += "  "
        lines.append(f"{ind}#pragma omp for" + (f" collapse({len(xs)})" if len(xs) > 1 else ""))
        for s in xs[:-1]:
            lines.append(f"{ind}for (int64_t {s.name} = 0; {s.name} < {s.extent}; ++{s.name}) {{")
            ind += "  "
        lines.append(f"{ind}for (int64_t {xl.name}_o = 0; {xl.name}_o < {xl.extent}; {xl.name}_o += {STREAM_CHUNK}) {{")
        ind += "  "
        for n in stored:
            lines.append(f"{ind}alignas(64) float kiln_st_{n.name}[{STREAM_CHUNK}];")
        lines.append(f"{ind}#pragma omp simd{self.flag}")
        lines.append(f"{ind}for (int64_t kiln_l = 0; kiln_l < {STREAM_CHUNK}; ++kiln_l) {{")
        lines.append(f"{ind}  const int64_t {xl.name} = {xl.name}_o + kiln_l;")
        scope = Scope(lines, ind + "  ")
        for g in k.groups:
            for n in g.nodes:
                value = scope.emit(n.body)
                if n.name in streamed:
                    lines.append(f"{ind}  const float v_{n.name} = {value};")
                    lines.append(f"{ind}  kiln_st_{n.name}[kiln_l] = v_{n.name};")
                else:
                    finish_value(scope, n, value)
        lines.append(f"{ind}}}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  const int64_t {xl.name} = {xl.name}_o;")
        for n in stored:
            lines.append(f"{ind}  kiln_stream64(&p_{n.name}[{index_str(n.store)}], kiln_st_{n.name});")
        lines.append(f"{ind}}}")
        for _ in xs:
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        lines.append(f"{ind}kiln_sfence();")
        ind = ind[:-2]
        lines.append(f"{ind}}}")

    def _scratch(self, scope):
        """Per-row arrays for values a later inner loop reads back (aligned, on the stack)."""
        size = _numel(self.kernel.inner)
        for n in self.kernel.nodes:
            if n.scratch:
                scope.lines.append(f"{scope.indent}alignas(64) {storage_ctype(n.buffer.layout.dtype)} p_{n.name}[{size}];")


def render_kernel(kernel) -> str:
    for n in kernel.nodes:
        for m in L.walk(n.body):
            if m.dtype not in CTYPES:
                raise UnsupportedGraph(f"dtype {m.dtype} is not supported by the C++ backend yet")
    args = kernel_args(kernel)
    params = ", ".join(f"{'' if a.written else 'const '}{storage_ctype(a.dtype)}* __restrict__ p_{a.buffer}" for a in args)
    writer = KernelWriter(kernel)
    body = writer.body() + index_check.epilogue(kernel)
    clause = parallel_if(kernel)
    if clause:
        body = [line + clause if "#pragma omp parallel" in line else line for line in body]
    sizes = size_params("\n".join(body))
    if sizes:
        params += "".join(f", const int64_t {s}" for s in sizes)
    if not writer.domain:
        return "\n".join([f'extern "C" void {kernel.name}({params}) {{', *body, "}"])
    names = ", ".join([f"p_{a.buffer}" for a in args] + sizes)
    return "\n".join([
        f"template <bool KILN_EXACT> static int {kernel.name}_impl({params}) {{", *body, "  return kiln_big;", "}",
        f'extern "C" void {kernel.name}({params}) {{',
        f"  if ({kernel.name}_impl<false>({names})) {kernel.name}_impl<true>({names});  // an input outside the fast path's domain",
        "}"])


def canonical_text(kernel, text: str) -> str:
    """`text` (the kernel rendered) with its own names (function, arguments, locals, accumulators)
    replaced by positional ones: two kernels with the same canonical text are the same machine code.
    A name matches as a whole identifier or as the start of one before `_` (acc_buf7_0)."""
    names = [kernel.name] + [f"p_{a.buffer}" for a in kernel_args(kernel)] + \
        [f"{prefix}_{n.name}" for n in kernel.nodes for prefix in ("p", "v", "acc")]
    index = {name: f"kiln_n{i}" for i, name in enumerate(dict.fromkeys(names))}
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(index, key=len, reverse=True)) + r")(?=\b|_)")
    return pattern.sub(lambda m: index[m.group(1)], text)


@dataclass
class CppSource:
    """A graph's C++: the prelude, the declarations every unit needs (index checks), what only one
    unit defines (the error flag), and one text per distinct kernel; `same_as` maps each kernel to
    the one whose code it runs (a repeated layer's kernels are built once). `text` is the whole
    program as one unit: what `kiln dump` shows and what the build cache is keyed by."""
    prelude: str
    shared: str
    defined_once: str
    kernels: dict[str, str]           # kernel name -> its text, for the kernels rendered
    same_as: dict[str, str]           # every kernel name -> the name of the function it calls
    sizes: dict[str, list]            # every kernel name -> the size symbols it takes after its buffers

    @property
    def text(self) -> str:
        aliases = [f"// {k}: the code of {v}" for k, v in self.same_as.items() if k != v]
        return self.prelude + self.shared + self.defined_once + "\n" + "\n".join(aliases) + \
            ("\n" if aliases else "") + "\n\n".join(self.kernels.values()) + "\n"


def render_source(kernels) -> str:
    """The graph's kernels as one C++ program."""
    return render_parts(kernels).text


def render_parts(kernels) -> CppSource:
    from .prelude import PRELUDE

    checks = checks_indices(kernels)
    texts, same_as, seen, sizes = {}, {}, {}, {}
    for k in kernels:
        text = render_kernel(k)
        sizes[k.name] = size_params(text)
        first = seen.setdefault(canonical_text(k, text), k.name)
        same_as[k.name] = first
        if first == k.name:
            texts[k.name] = text
    return CppSource(PRELUDE, index_check.SOURCE if checks else "",
                     index_check.FLAG_DEFINITION + index_check.TAKE_FLAG if checks else "", texts, same_as, sizes)
