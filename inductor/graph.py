"""GraphLowering: a prims GraphModule -> buffers of loop IR, inputs, constants and outputs."""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch.fx as fx

from kiln.prims import MUTATIONS_KEY, OUTPUTS_KEY, Prim, UnsupportedGraph
from kiln.prims.view_replay import is_view
from kiln.prims.meta import TensorMeta, contiguous_strides

from .ir import loop as L
from .ir.buffers import (Buffer, ComputedBuffer, ConstantBuffer, ExternBuffer, InputBuffer, Layout, Pointwise,
                         TensorArg, loop_syms)
from .ir.index import affine, as_strides
from .lowering import LOWERINGS, TensorValue

# A value read by several consumers is realized (stored once) when recomputing it would cost
# more than this many scalar ops per element.
REALIZE_COST = 4


def memory_order(layout: Layout) -> tuple[int, ...]:
    """Dims from the largest stride to the smallest (size-1 dims keep their place)."""
    dims = range(len(layout.shape))
    return tuple(sorted(dims, key=lambda d: (-layout.strides[d] if layout.shape[d] != 1 else 0, d))) \
        if any(layout.shape[d] != 1 for d in dims) and layout.strides != contiguous_strides(layout.shape) \
        else tuple(dims)


def _source_is_transposed(body, syms) -> bool:
    """Is the first load that walks both of the last two dims contiguous along the second-to-last?"""
    a, b = syms[-2], syms[-1]
    for n in L.walk(body):
        if n.op is L.LoopOp.LOAD:
            coeffs = dict(affine(n.attr[1]).terms)
            if a in coeffs and b in coeffs:
                return coeffs[a] == 1 and coeffs[b] != 1
    return False


@dataclass(frozen=True)
class GraphOutput:
    """Where output i comes from: a buffer (as is, or reinterpreted with eager's strides: "view"), a
    graph input returned as is, a Python constant, or a view of another GraphOutput ("alias":
    (base, shape, strides, storage offset relative to the base's, dtype or None), as prims' ViewOf))."""
    kind: str  # "buffer" | "view" | "input" | "constant" | "alias"
    value: object

    def __repr__(self):
        return f"{self.kind}:{self.value}"


class GraphLowering:
    def __init__(self, gm: fx.GraphModule, example_inputs):
        self.gm = gm
        self.example_inputs = example_inputs
        self.buffers: dict[str, Buffer] = {}
        self.inputs: list[InputBuffer] = []
        self.outputs: list[GraphOutput] = []  # what the caller gets
        self.bases: list[GraphOutput] = []  # computed only for aliased outputs to view
        self.mutations: list[tuple[int, str]] = []  # (input index, buffer with its new value), in order
        self.restrides: list[tuple] = []  # (input index, shape, strides, offset): t_, unsqueeze_, ... on inputs
        self.storage_sets: list[tuple] = []  # (input index, GraphOutput it becomes): x.set_(y) on inputs
        self.checks: list[str] = []  # buffers computed for their index checks alone (check_index_all)
        self.constant_names: dict[str, str] = {}  # get_attr target -> ConstantBuffer name
        self.current_node: fx.Node | None = None
        self.size_inputs: list[str] = []  # size symbols the caller passes after the tensors (kiln/dynamic.py)

    # -- buffers -------------------------------------------------------------------------
    def _new_name(self) -> str:
        return f"buf{sum(1 for b in self.buffers.values() if not isinstance(b, (InputBuffer, ConstantBuffer)))}"

    def _register(self, buf: Buffer) -> TensorValue:
        self.buffers[buf.name] = buf
        lay = buf.layout
        return TensorValue(lay.shape, lay.dtype, lay.device,
                           lambda idx: L.load(buf.name, lay.index(idx), lay.dtype), buffer=buf.name)

    def realize(self, value: TensorValue, layout: Layout | None = None) -> TensorValue:
        """Store `value` in a buffer of its own (contiguous unless a layout is given)."""
        if layout is None:
            if value.buffer is not None:
                return value
            layout = Layout(value.shape, contiguous_strides(value.shape), value.dtype, value.device)
        order = memory_order(layout)
        if order == tuple(range(len(order))):
            body = value.loader(loop_syms("i", value.shape))
            return self._register(ComputedBuffer(self._new_name(), layout, Pointwise(value.shape, body)))
        data = Pointwise(tuple(value.shape[d] for d in order), None, order)  # loops in memory order
        data = Pointwise(data.ranges, value.loader(data.index()), order)
        return self._register(ComputedBuffer(self._new_name(), layout, data))

    def realize_reduction(self, reduction, dtype, device) -> TensorValue:
        layout = Layout(reduction.ranges, contiguous_strides(reduction.ranges), dtype, device)
        return self._register(ComputedBuffer(self._new_name(), layout, reduction))

    def extern(self, kind, args, kwargs, shape, dtype, device, op=None, strides=None) -> TensorValue:
        layout = Layout(tuple(shape), tuple(strides) if strides else contiguous_strides(shape), dtype, device)
        return self._register(ExternBuffer(self._new_name(), layout, kind, tuple(args), dict(kwargs), op))

    def extern_call(self, kind, fn, args, kwargs, meta):
        """ExternBuffers for a call with eager's result layout(s); a tuple of TensorValues for several results."""
        if not isinstance(meta, tuple):
            return self.extern(kind, args, kwargs, meta.shape, meta.dtype, meta.device, op=fn, strides=meta.strides)
        base = int(self._new_name()[3:])
        count = iter(range(base, base + len(meta)))
        names = tuple(None if m is None else f"buf{next(count)}" for m in meta)
        first, values = None, []
        for name, m in zip(names, meta):
            if m is None:
                values.append(None)
                continue
            layout = Layout(tuple(m.shape), tuple(m.strides), m.dtype, m.device)
            if first is None:
                buf = ExternBuffer(name, layout, kind, tuple(args), dict(kwargs), fn, outputs=tuple(names))
                first = name
            else:
                buf = ExternBuffer(name, layout, kind, source=first)
            values.append(self._register(buf))
        return tuple(values)

    def tensor_arg(self, value: TensorValue, transposable: bool = False) -> TensorArg:
        """A strided view of a buffer holding `value`, realizing it only if it is not one already.
        `transposable` (matmul operands): realize with the last two dims swapped when that is the
        order the value's source is laid out in, so the copy reads and writes contiguously."""
        view = self.strided_view(value)
        if view is not None:
            return view
        syms = loop_syms("i", value.shape)
        body = value.loader(syms)
        layout = None
        if transposable and value.ndim >= 2 and _source_is_transposed(body, syms):
            perm = list(range(value.ndim - 2)) + [value.ndim - 1, value.ndim - 2]
            inner = contiguous_strides([value.shape[d] for d in perm])
            strides = [0] * value.ndim
            for k, d in enumerate(perm):
                strides[d] = inner[k]
            layout = Layout(value.shape, tuple(strides), value.dtype, value.device)
        value = self.realize(value, layout)
        buf = self.buffers[value.buffer]
        return TensorArg(value.buffer, value.shape, buf.layout.strides, 0)

    def strided_view(self, value: TensorValue) -> TensorArg | None:
        """`value` as a strided view of a buffer (size-1 dims get stride 0), or None if it is not one."""
        syms = loop_syms("i", value.shape)
        body = value.loader(syms)
        if body.op is L.LoopOp.LOAD and body.dtype == value.dtype:
            strided = as_strides(body.attr[1], syms)
            if strided is not None:
                return TensorArg(body.attr[0], value.shape, strided[0], strided[1])
        return None

    def tensor_args_in(self, tree):
        if isinstance(tree, TensorValue):
            return self.tensor_arg(tree)
        if isinstance(tree, (list, tuple)):
            return type(tree)(self.tensor_args_in(a) for a in tree)
        if isinstance(tree, dict):
            return {k: self.tensor_args_in(v) for k, v in tree.items()}
        return tree

    # -- the walk ------------------------------------------------------------------------
    def run(self) -> "GraphLowering":
        env: dict[fx.Node, object] = {}
        inputs = iter(self.example_inputs)
        for node in self.gm.graph.nodes:
            self.current_node = node
            if node.op == "placeholder":
                m = TensorMeta.of(next(inputs))  # sizes may be symbolic
                layout = Layout(m.shape, m.strides, m.dtype, m.device)
                buf = InputBuffer(node.name, layout, index=len(self.inputs))
                self.inputs.append(buf)
                env[node] = self._register(buf)
            elif node.op == "get_attr":
                t = getattr(self.gm, node.target)
                layout = Layout(tuple(t.shape), tuple(t.stride()), t.dtype, t.device)
                name = self.constant_names[node.target] = f"const_{node.target.lstrip('_')}"
                env[node] = self._register(ConstantBuffer(name, layout, value=t))
            elif node.op == "call_function" and isinstance(node.target, Prim):
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
                lowering = LOWERINGS.get(node.target)
                if lowering is None:
                    raise UnsupportedGraph(f"prim {node.target} has no lowering yet")
                value = lowering(self, *args, **kwargs)
                if (isinstance(value, TensorValue) and len(node.users) > 1 and value.buffer is None
                        and value.cost > REALIZE_COST):
                    value = self.realize(value)
                env[node] = value
            elif node.op == "call_function" and node.target is operator.getitem:
                env[node] = env[node.args[0]][node.args[1]]
            elif node.op == "output":
                self._lower_outputs(fx.node.map_arg(node.args[0], lambda n: env[n]))
            else:
                raise UnsupportedGraph(f"unexpected node {node.format_node()}")
        self.current_node = None
        return self

    def _lower_outputs(self, values):
        """User outputs in eager's layout, views where eager aliases, and the inputs' new values."""
        infos = self.gm.meta[OUTPUTS_KEY]
        claimed: set[str] = set()
        by_pos: dict[int, GraphOutput] = {}
        for pos, (value, info) in enumerate(zip(values, infos)):  # computed outputs and bases first
            if info.role == "mutation" or info.view_of is not None or info.same_as is not None:
                continue
            if not isinstance(value, TensorValue):
                by_pos[pos] = GraphOutput("constant", value)
            elif info.input_index is not None:
                by_pos[pos] = GraphOutput("input", info.input_index)
            else:
                layout = Layout(info.meta.shape, info.meta.strides, info.meta.dtype, info.meta.device)
                out = self._output_view(value, layout, claimed)
                if out is None:
                    out = GraphOutput("buffer", self.realize(value, layout).buffer)
                claimed.add(out.value if out.kind == "buffer" else out.value[0])
                by_pos[pos] = out
        for pos, info in enumerate(infos):  # then views of inputs, constants and those outputs
            v = info.view_of
            if v is not None:
                base = {"input": lambda: GraphOutput("input", v.index), "output": lambda: by_pos[v.index],
                        "constant": lambda: GraphOutput("buffer", self.constant_names[v.index])}[v.base]()
                by_pos[pos] = GraphOutput("alias", (base, v.shape, v.strides, v.offset, v.dtype))
        for pos, info in enumerate(infos):
            if info.role == "user":
                self.outputs.append(by_pos[info.same_as] if info.same_as is not None else by_pos[pos])
        self.bases = [by_pos[pos] for pos, info in enumerate(infos) if info.role == "base"]
        for m in self.gm.meta.get(MUTATIONS_KEY, ()):
            if m.output_index is not None:
                self.mutations.append((m.input_index, self._mutation_source(values[m.output_index])))
            if m.layout is not None:
                self.restrides.append((m.input_index, *m.layout))
            if m.storage is not None:
                v = m.storage
                self.storage_sets.append((m.input_index, GraphOutput("alias", (by_pos[v.index], v.shape, v.strides,
                                                                                v.offset, v.dtype))))

    def _mutation_source(self, value: TensorValue) -> str:
        """A fresh buffer holding an input's new value, which the wrapper copies into the input. Any
        other value (a view of that very input, another input that an earlier copy-back overwrites) is
        first realized by a kernel, which runs before every copy-back."""
        buf = self.buffers.get(value.buffer) if value.buffer is not None else None
        if isinstance(buf, ComputedBuffer) or (isinstance(buf, ExternBuffer) and not (buf.kind == "fallback" and
                                                                                      is_view(buf.op))):
            return buf.name
        return self.realize(value, Layout(value.shape, contiguous_strides(value.shape), value.dtype,
                                          value.device)).buffer

    def output_buffers(self) -> set[str]:
        """Buffers the wrapper reads after the last kernel: outputs, bases of views, inputs' new values;
        and buffers computed only for their checks, which must run although nothing reads them."""
        return {name for _, name in self.mutations} | set(self.checks) | self.returned_buffers()

    def returned_buffers(self) -> set[str]:
        """Buffers the caller gets (or views): outputs and bases of aliased outputs."""
        names = set()
        for o in self.outputs + self.bases:
            while o.kind == "alias":
                o = o.value[0]
            if o.kind in ("buffer", "view"):
                names.add(o.value if o.kind == "buffer" else o.value[0])
        return names

    def _output_view(self, value: TensorValue, layout: Layout, claimed) -> GraphOutput | None:
        """Return a computed buffer itself (or reinterpreted with eager's strides) instead of copying it."""
        syms = loop_syms("i", value.shape)
        body = value.loader(syms)
        if body.op is not L.LoopOp.LOAD or body.dtype != layout.dtype:
            return None
        buf = self.buffers[body.attr[0]]
        if not isinstance(buf, (ComputedBuffer, ExternBuffer)) or buf.name in claimed:
            return None
        strided = as_strides(body.attr[1], syms)
        if strided is None or strided[1] != 0 or buf.layout.storage_size() != layout.storage_size():
            return None
        if any(a != b for a, b, size in zip(strided[0], layout.strides, layout.shape) if size != 1):
            return None
        if buf.layout == layout:
            return GraphOutput("buffer", buf.name)
        return GraphOutput("view", (buf.name, layout.shape, layout.strides))

    def __repr__(self):
        lines = [repr(b) for b in self.buffers.values() if not isinstance(b, (InputBuffer, ConstantBuffer))]
        lines.append(f"outputs: {self.outputs}")
        if self.bases:
            lines.append(f"bases of aliased outputs: {self.bases}")
        if self.mutations:
            lines.append("input mutations: " + ", ".join(f"{self.inputs[i].name} <- {b}" for i, b in self.mutations))
        if self.restrides:
            lines.append("inputs restrided: " + ", ".join(f"{self.inputs[r[0]].name} -> {r[1:]}" for r in self.restrides))
        if self.storage_sets:
            lines.append("inputs given a new storage: " + ", ".join(f"{self.inputs[i].name} -> {o}"
                                                                     for i, o in self.storage_sets))
        return "\n".join(lines)
