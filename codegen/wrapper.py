"""The wrapper: generated Python that allocates buffers, runs kernels and extern calls in order,
frees intermediates at their last use, and returns outputs with eager's strides and identity."""
from __future__ import annotations

import torch

from inductor.ir.buffers import ConstantBuffer, ExternBuffer, InputBuffer, TensorArg
from inductor.memory import Alloc, Free
from inductor.scheduler import FusedKernel

from . import alloc


class WrapperCode:
    """Python source of `call(*inputs)` plus the globals it runs with."""

    def __init__(self, graph, steps, backend):
        self.graph, self.steps, self.backend = graph, steps, backend
        self.globals: dict = {"torch": torch, "empty_strided": alloc.BufferPool().empty_strided,
                              "as_strided": torch.as_strided}
        self.lines: list[str] = []

    def _var(self, name: str) -> str:
        buf = self.graph.buffers.get(name)
        return f"in_{name}" if isinstance(buf, InputBuffer) else name

    def _const(self, value) -> str:
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
        params = ", ".join(f"in_{b.name}" for b in g.inputs)
        self.lines.append(f"def call({params}):")
        for step in self.steps:
            if isinstance(step, Alloc):
                self._alloc(step)
            elif isinstance(step, Free):
                self.lines.append(f"    del {step.name}")
            elif isinstance(step.item, FusedKernel):
                self.lines.append("    " + self.backend.call_kernel(step.item, self._var))
            else:
                self._extern(step.item)
        self.lines.append(f"    return ({''.join(self._output(o) + ', ' for o in g.outputs)})")
        return "\n".join(self.lines) + "\n"

    def _alloc(self, a: Alloc):
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
        args = ", ".join(self._value(a) for a in e.args)
        kwargs = "".join(f", {k}={self._value(v)}" for k, v in e.kwargs.items())
        if e.kind == "matmul":
            self.lines.append(f"    torch.matmul({args}, out={e.name})")
        else:
            op = self._const(e.op)
            self.lines.append(f"    {e.name} = {op}({args}{kwargs})")

    def _output(self, o) -> str:
        if o.kind == "buffer":
            return o.value
        if o.kind == "view":
            name, shape, strides = o.value
            return f"as_strided({name}, {shape}, {strides})"
        if o.kind == "input":
            return f"in_{self.graph.inputs[o.value].name}"
        return self._const(o.value)


def build_wrapper(graph, steps, backend):
    """(call function, its source)."""
    code = WrapperCode(graph, steps, backend)
    source = code.generate()
    namespace = dict(code.globals)
    namespace.update(backend.globals())
    exec(compile(source, "<kiln wrapper>", "exec"), namespace)
    return namespace["call"], source
