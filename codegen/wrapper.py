"""The wrapper: generated Python that allocates buffers, runs kernels and extern calls in order,
frees intermediates at their last use, copies new values into mutated inputs, and returns outputs
with eager's strides, identity and aliasing."""
from __future__ import annotations

import math
import time

import torch

from kiln.inductor.ir.buffers import ConstantBuffer, ExternBuffer, InputBuffer, TensorArg
from kiln.inductor.ir.schedule import Alloc, Free, FusedKernel
from kiln.prims.graph_io import view_of_storage
from kiln.prims.symbolic import NotConcrete, bare_symbol, derived_sizes, size_hint
from kiln.prims.write_on_copy import copy_into

from . import alloc, in_place, index_check, profile
from .wrapper_check import check_names


def in_layout(t: torch.Tensor, shape, strides) -> torch.Tensor:
    """`t`, or a copy of it with these strides (an op's output strides follow its inputs', and Kiln's
    buffers need not have eager's). A result that is not a tensor is kept as it is: an ATen op may
    return an undefined tensor (None) where its fake kernel made an empty one (mkldnn_rnn_layer's
    workspace, say), as eager then does too."""
    if not isinstance(t, torch.Tensor):
        return t
    if all(a == b for a, b, n in zip(t.stride(), strides, shape) if n != 1):
        return t
    return torch.empty_strided(shape, strides, dtype=t.dtype, device=t.device).copy_(t)


class WrapperCode:
    """Python source of `call(*inputs)` plus the globals it runs with."""

    def __init__(self, graph, steps, backend, profile=None):
        self.graph, self.steps, self.backend = graph, steps, backend
        self.profile = profile  # a codegen.profile.GraphProfile: each kernel and library call timed
        self.globals: dict = {"torch": torch, "empty_strided": alloc.BufferPool().empty_strided,
                              "as_strided": torch.as_strided, "in_layout": in_layout, "view_of_storage": view_of_storage,
                              "copy_into": copy_into}
        self.lines: list[str] = []

    def _var(self, name: str) -> str:
        buf = self.graph.buffers.get(name)
        return f"in_{name}" if isinstance(buf, InputBuffer) else name

    def _const(self, value) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            return f"float({str(value)!r})"  # repr gives inf / nan, which are not Python names
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        name = f"c{len(self.globals)}"
        self.globals[name] = value
        return name

    def _tensor_arg(self, a: TensorArg) -> str:
        buf = self.graph.buffers[a.buffer]
        v = self._var(a.buffer)
        lay = buf.layout
        if a.shape == lay.shape and a.strides == lay.strides and a.offset == 0:
            return v
        return f"as_strided({v}, {a.shape}, {a.strides}, {v}.storage_offset() + {a.offset})"

    def _value(self, x) -> str:
        if isinstance(x, TensorArg):
            return self._tensor_arg(x)
        if isinstance(x, (list, tuple)):
            inner = ", ".join(self._value(a) for a in x)
            return f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
        return self._const(x)

    def generate(self) -> str:
        g = self.graph
        for buf in g.buffers.values():
            if isinstance(buf, ConstantBuffer):
                self.globals[buf.name] = buf.value
        self.in_place = in_place.written_in_place(g, self.steps, self.backend)  # buffer -> the input it is written into
        params = ", ".join([f"in_{b.name}" for b in g.inputs] + list(getattr(g, "size_inputs", ())))
        self.lines.append(f"def call({params}):")
        self.lines.extend(size_lines(g))
        for step in self.steps:
            if isinstance(step, Alloc):
                self._alloc(step)
            elif isinstance(step, Free):
                self.lines.append(f"    del {step.name}")
            elif isinstance(step.item, FusedKernel):
                start = self._time_start()
                self.lines.append("    " + self.backend.call_kernel(step.item, self._var))
                self._time_end(start, step.item)
            else:
                start = self._time_start()
                self._extern(step.item)
                self._time_end(start, step.item)
        self.lines.extend(index_check.wrapper_lines(self.backend, params))
        for index, name in g.mutations:  # after every kernel, in program order, into the caller's tensors
            if name in self.in_place:  # its kernel wrote it there already
                continue
            dst, lay = self._var(g.inputs[index].name), g.inputs[index].layout
            if any(st == 0 and n > 1 for n, st in zip(lay.shape, lay.strides)):  # an expanded input: its memory
                self.lines.append(f"    copy_into({dst}, {self._var(name)})")
            else:
                self.lines.append(f"    {dst}.copy_({self._var(name)})")
        self._names: dict[int, str] = {}
        returned = [self._output(o) for o in g.outputs]
        for index, shape, strides, offset in g.restrides:  # after the views, made at the original offsets
            self.lines.append(f"    {self._var(g.inputs[index].name)}.as_strided_({shape}, {strides}, {offset})")
        for index, view in g.storage_sets:  # x.set_(y): last, after every view of its old storage
            self.lines.append(f"    {self._var(g.inputs[index].name)}.set_({self._output(view)})")
        self.lines.append(f"    return ({''.join(r + ', ' for r in returned)})")
        text = "\n".join(self.lines) + "\n"
        check_sizes_defined(text)
        return text

    def _time_start(self) -> int:
        if self.profile is not None:
            self.globals.setdefault("_clock", time.perf_counter)
            self.globals.setdefault("_record", self.profile.record)
            self.lines.append("    _t = _clock()")
        return len(self.lines)

    def _time_end(self, start: int, item) -> None:
        if self.profile is None or len(self.lines) == start:  # nothing emitted (a later result of a call)
            return
        index = self.profile.add_step(*self._describe(item))
        self.lines.append(f"    _record({index}, _clock() - _t)")

    def _describe(self, item) -> tuple[str, str, str, int]:
        """(label, kind, detail, bytes touched) of a kernel or a library call, for the profile."""
        buffers = self.graph.buffers
        if isinstance(item, FusedKernel):
            names = item.reads() | set(item.writes())
            loops = f"outer {list(item.outer)}" + (f", inner {list(item.inner)}" if item.inner else "")
            return item.name, "kernel", loops, sum(_nbytes(buffers[n].layout) for n in names if n in buffers)
        names = item.reads() | {n for n in (*item.outputs, item.name) if n}
        shapes = ", ".join(str(list(a.shape)) for a in item.args if isinstance(a, TensorArg))
        label = "matmul" if item.kind == "matmul" else str(item.op)
        kind = "matmul" if item.kind == "matmul" else "library"
        return label, kind, f"({shapes})", sum(_nbytes(buffers[n].layout) for n in names if n in buffers)

    def _alloc(self, a: Alloc):
        bound = in_place.allocation_line(a, self.in_place, self._var)
        if bound is not None:
            self.lines.append(bound)
            return
        lay = a.layout
        if a.reuse is None:
            dev = repr(str(lay.device))
            self.lines.append(f"    {a.name} = empty_strided({lay.shape}, {lay.strides}, dtype={lay.dtype}, device={dev})")
            return
        old = self.graph.buffers[a.reuse].layout
        same = old.shape == lay.shape and old.strides == lay.strides
        rhs = a.reuse if same else f"as_strided({a.reuse}, {lay.shape}, {lay.strides})"
        self.lines.append(f"    {a.name} = {rhs}; del {a.reuse}")

    def _extern(self, e: ExternBuffer):
        args = ", ".join([self._value(a) for a in e.args] + [f"{k}={self._value(v)}" for k, v in e.kwargs.items()])
        if e.kind == "matmul":
            self.lines.append(f"    torch.matmul({args}, out={e.name})")
            return
        if e.source is not None:
            return  # a later result of a call made at its first result's buffer
        # a library allocates its own results; later loads assume the layouts their metas promised
        op = self._const(e.op)
        if not e.outputs:
            self.lines.append(f"    {e.name} = {self._laid_out(e.name, f'{op}({args})')}")
            return
        self.lines.append(f"    results = {op}({args})")
        for i, name in enumerate(e.outputs):
            if name is not None:
                self.lines.append(f"    {name} = {self._laid_out(name, f'results[{i}]')}")
        self.lines.append("    del results")

    def _laid_out(self, name, expr) -> str:
        lay = self.graph.buffers[name].layout
        return f"in_layout({expr}, {lay.shape}, {lay.strides})"

    def _output(self, o) -> str:
        """An expression for output `o`; one made by a call is bound to a name once, so an output
        returned twice is one object, and views of it share its storage."""
        if o.kind == "buffer":
            return self._var(o.value)
        if o.kind == "input":
            return self._var(self.graph.inputs[o.value].name)
        if o.kind == "constant":
            return self._const(o.value)
        name = self._names.get(id(o))
        if name is None:
            if o.kind == "view":
                buf, shape, strides = o.value
                expr = f"as_strided({buf}, {shape}, {strides})"
            else:  # alias: eager's view of a base (an input, a constant or another output)
                base, shape, strides, offset, dtype = o.value
                b = self._output(base)
                expr = f"as_strided({b}, {shape}, {strides}, {b}.storage_offset() + {offset})" if dtype is None \
                    else f"view_of_storage({b}, {shape}, {strides}, {offset}, {dtype})"
            name = self._names[id(o)] = f"out{len(self._names)}"
            self.lines.append(f"    {name} = {expr}")
        return name


def size_lines(g) -> list[str]:
    """`ks0 = in_x.size(0)`: each size symbol read once from the first input dim (or stride) that is
    that symbol alone; symbols given as size inputs are parameters already."""
    defined = set(getattr(g, "size_inputs", ()))
    lines = []
    for b in g.inputs:
        for what, values in (("size", b.layout.shape), ("stride", b.layout.strides)):
            for d, v in enumerate(values):
                name = bare_symbol(v)
                if name is not None and name not in defined:
                    defined.add(name)
                    lines.append(f"    {name} = in_{b.name}.{what}({d})")
    for size in derived_sizes():  # (L - 3)//2, max(n, m): from the symbols above, in creation order
        if size.name not in defined:
            defined.add(size.name)
            lines.append(f"    {size.name} = {size.python()}")
    return lines


def check_sizes_defined(text: str) -> None:
    """Every size symbol the wrapper or a kernel call reads has a value."""
    import re

    defined = set(re.findall(r"\b(k[sd]\d+) = ", text)) | set(re.findall(r"def call\(([^)]*)\)", text)[0].replace(" ", "").split(","))
    missing = set(re.findall(r"\bk[sd]\d+\b", text)) - defined
    if missing:
        raise NotConcrete(f"size symbol(s) {sorted(missing)} are neither an input's size nor a size input")


def _nbytes(layout) -> int:
    return size_hint(layout.storage_size()) * torch.empty((), dtype=layout.dtype).element_size()


def build_wrapper(graph, steps, backend, on_index_error=None, profile_name: str | None = None):
    """(call function, its source). `on_index_error(*inputs)`: what to return instead when a kernel
    met an out-of-range index (compile_fx runs the graph eagerly, which raises eager's error).
    `profile_name`: time every step and the whole call into a codegen.profile.GraphProfile."""
    graph_profile = profile.new_graph_profile(profile_name) if profile_name is not None else None
    code = WrapperCode(graph, steps, backend, graph_profile)
    source = code.generate()
    namespace = dict(code.globals)
    namespace.update(backend.globals())
    on_index_error = on_index_error or index_check.no_eager_graph
    namespace[index_check.ON_ERROR] = on_index_error
    check_names(source, namespace)  # a name the plan never bound fails here, not when called
    exec(compile(source, "<kiln wrapper>", "exec"), namespace)
    call = index_check.guard(namespace["call"], backend, on_index_error)
    return (call if graph_profile is None else graph_profile.timed(call)), source
