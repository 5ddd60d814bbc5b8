"""Torch level -> ATen level, with Kiln's own tracer on the dispatcher.

The torch-level graph runs on fake tensors under a TorchDispatchMode that records every ATen
overload it sees (composite ops are already decomposed by the dispatcher by then). Each
recorded node carries the TensorMeta of its result and its `Identity` (which eager tensor and
storage it is). Real tensors met on the way (module parameters, constants) become get_attr
constants of the new graph. In-place ops, out= ops and views are recorded as they are: the graph
says what eager did, and `functionalize` turns it into a pure graph.
"""
from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import (DataDependentOutputException, DynamicOutputShapeException, FakeTensor,
                                          FakeTensorMode, UnsupportedOperatorException)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from kiln import logs

from .foreach import is_foreach, run_per_element
from .builder import META_KEY
from .eager_strides import restride_like_eager
from .errors import DataDependentOp, FakeRunError, UnsupportedGraph
from .graph_io import OUTPUTS_KEY, OutputInfo
from .meta import TensorMeta
from .lifted_scalars import LiftedScalars, ScalarNotLifted
from .symbolic import NotConcrete, from_sym

SYM_OPS = (torch.ops.aten.sym_size.int, torch.ops.aten.sym_stride.int, torch.ops.aten.sym_numel.default,
           torch.ops.aten.sym_storage_offset.default)  # size queries: Python values, not graph nodes

log = logs.get_logger("dynamic")

IDENTITY_KEY = "kiln_identity"  # node.meta[IDENTITY_KEY]: Identity of the node's tensor result


@dataclass(frozen=True)
class Identity:
    """Which eager tensor a node's result is, and where it lives: small ints, unique per trace."""
    tensor: int
    storage: int
    offset: int  # storage offset, in elements


# ops whose results are views although their schemas say they are fresh (gru_cell's and lstm_cell's
# decompositions split gates with unsafe_split, then write them in place): recorded as the op whose
# schema says so, so functionalization sees the aliasing eager has
RECORDED_AS = {
    torch.ops.aten.unsafe_split.Tensor: torch.ops.aten.split.Tensor,
    torch.ops.aten.unsafe_split_with_sizes.default: torch.ops.aten.split_with_sizes.default,
}


class _Recorder(TorchDispatchMode):
    def __init__(self, tracer: "AtenTracer"):
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "prim" or func in SYM_OPS:  # metadata queries such as prim.device
            return func(*args, **kwargs)
        scalars = self.tracer.scalars
        if func is torch.ops.aten._local_scalar_dense.default:
            if scalars is not None and scalars.is_lifted_input(args[0]):
                return scalars.symbol_for(args[0])
            if id(args[0]) in self.tracer.input_values:
                return self.tracer.input_value(args[0])
        if scalars is not None and scalars.has_lifted(args, kwargs):
            return scalars.run(func, args, kwargs, self._record)
        if is_foreach(func):  # a list of tensors at once: traced element by element (prims/foreach.py)
            with self:
                return run_per_element(func, args, kwargs)
        if torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeImplicitAutograd"):
            # Reached only when autograd was skipped (inference mode, inference tensors), where such ops
            # would otherwise decompose: decompose here, so the graph is the same as under no_grad.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        t = self.tracer
        args, kwargs = tree_map(t.lift_constant, (args, kwargs))
        args = self._number_operand_as_tensor(func, args, kwargs)
        out = restride_like_eager(func, args, kwargs, func(*args, **kwargs))
        node = t.graph.call_function(RECORDED_AS.get(func, func), *tree_map(_node_arg(t), (args, kwargs)))
        t.bind(out, node)
        return out

    def _record(self, func, args, kwargs):
        return self.__torch_dispatch__(func, (), args, kwargs)

    def _number_operand_as_tensor(self, func, args, kwargs) -> tuple:
        """An op given only numbers (`torch.add(2, 3)`, `torch.div(7, 2)` in a captured graph) sees
        them as wrapped numbers, which reach this mode as plain Python numbers; with no tensor
        operand left, no prim could compute it. Its first number in a Tensor argument becomes a 0-dim
        tensor made in the graph (`aten.scalar_tensor`, of the dtype type promotion gives that number
        alone): the result (dtype, value, a fresh 0-dim tensor per call) is eager's, since a 0-dim
        tensor and wrapped numbers promote as wrapped numbers do."""
        if any(isinstance(x, torch.Tensor) for x in tree_flatten((args, kwargs))[0]):
            return args
        for i, (arg, value) in enumerate(zip(func._schema.arguments, args)):
            if isinstance(arg.type, torch.TensorType) and type(value) in _NUMBER_DTYPES:
                tensor = self.__torch_dispatch__(torch.ops.aten.scalar_tensor.default, (), (value,),
                                                 {"dtype": _NUMBER_DTYPES[type(value)]()})
                return (*args[:i], tensor, *args[i + 1:])
        return args


def _node_arg(tracer):
    def arg(x):
        if isinstance(x, torch.SymInt):
            return from_sym(x)
        if isinstance(x, (torch.SymFloat, torch.SymBool)):  # a number computed from static sizes, or no number
            return constant_of(x)
        return tracer.node_of(x)
    return arg


def constant_of(x):
    """A SymFloat/SymBool whose expression is a number, as that number; NotConcrete otherwise."""
    expr = x.node.expr
    if getattr(expr, "is_number", False):
        return bool(expr) if isinstance(x, torch.SymBool) else float(expr)
    raise NotConcrete(f"symbolic {type(x).__name__} {x} as an op argument")


_NUMBER_DTYPES = {bool: lambda: torch.bool, int: lambda: torch.int64, float: torch.get_default_dtype,
                  complex: lambda: {torch.float64: torch.complex128}.get(torch.get_default_dtype(), torch.complex64)}


class AtenTracer:
    def __init__(self, fake_mode: FakeTensorMode):
        self.fake_mode = fake_mode
        self.graph = fx.Graph()
        self.root = torch.nn.Module()
        self._nodes: dict[int, tuple[torch.Tensor, fx.Node]] = {}  # id(fake) -> (fake kept alive, node)
        self._consts: dict[int, torch.Tensor] = {}  # id(real) -> its fake
        self._tensor_ids: dict[int, int] = {}  # id(fake) -> Identity.tensor (fakes stay alive in _nodes)
        self._storage_ids: dict[int, int] = {}  # storage _cdata -> Identity.storage
        self._storages: list = []  # every storage met, so no _cdata is reused within a trace
        # a graph of symbolic sizes: id(fake input) -> (input position, value), for `.item()` of a
        # one-element input (a float module attribute under dynamic=True): its value, guarded
        self.input_values: dict[int, tuple] = {}
        self.value_guards: list[tuple] = []  # (input position, value) the graph was traced with
        self.scalars: LiftedScalars | None = None  # 0-dim float inputs whose `.item()` stays a tensor

    def input_value(self, fake):
        position, value = self.input_values[id(fake)]
        self.value_guards.append((position, value))
        return value

    def identity(self, t: torch.Tensor) -> Identity:
        tensor = self._tensor_ids.setdefault(id(t), len(self._tensor_ids))
        key = _storage(t)
        if key not in self._storage_ids:
            self._storage_ids[key] = len(self._storage_ids)
            self._storages.append(t.untyped_storage())  # kept alive: set_ may free it, and its address be reused
        storage = self._storage_ids[key]
        return Identity(tensor, storage, from_sym(t.storage_offset()))

    def bind(self, value, node: fx.Node) -> None:
        if isinstance(value, torch.Tensor):
            self._nodes[id(value)] = (value, node)
            node.meta[META_KEY] = TensorMeta.of(value)
            node.meta[IDENTITY_KEY] = self.identity(value)
        elif isinstance(value, (tuple, list)):
            metas = []
            for i, v in enumerate(value):
                if isinstance(v, torch.Tensor):
                    item = self.graph.call_function(operator.getitem, (node, i))
                    self.bind(v, item)
                    metas.append(TensorMeta.of(v))
                else:
                    metas.append(None)
            node.meta[META_KEY] = tuple(metas)
        elif value is not None:
            raise UnsupportedGraph(f"op {node.target} returned {type(value).__name__}")

    def node_of(self, x):
        if isinstance(x, torch.Tensor):
            hit = self._nodes.get(id(x))
            if hit is None:
                raise UnsupportedGraph("a tensor entered the graph from outside its inputs")
            return hit[1]
        return x

    def lift_constant(self, x):
        """A real tensor inside the trace is a constant: store it and use its fake twin."""
        if not isinstance(x, torch.Tensor) or isinstance(x, FakeTensor):
            return x
        fake = self._consts.get(id(x))
        if fake is None:
            name = f"_const{len(self._consts)}"
            self.root.register_buffer(name, x)
            fake = self.fake_mode.from_tensor(x, static_shapes=True)
            self._consts[id(x)] = fake
            with self.graph.inserting_before(_first_non_placeholder(self.graph)):
                node = self.graph.get_attr(name)
            self.bind(fake, node)
        return fake


def _first_non_placeholder(graph: fx.Graph):
    for n in graph.nodes:
        if n.op != "placeholder":
            return n
    return None


class TorchLevelRunner(fx.Interpreter):
    """Runs the torch-level graph on fakes; placeholders and outputs map onto the ATen graph."""

    def __init__(self, gm, tracer: AtenTracer, fake_inputs):
        super().__init__(gm)
        self.tracer = tracer
        self.fake_inputs = iter(fake_inputs)

    def placeholder(self, target, args, kwargs):
        fake = next(self.fake_inputs)
        if isinstance(fake, torch.SymInt):  # a size symbol: its uses carry it (prims/symbolic.py)
            return fake
        node = self.tracer.graph.placeholder(target)
        self.tracer.bind(fake, node)
        return fake

    def get_attr(self, target, args, kwargs):
        return self.tracer.lift_constant(super().get_attr(target, args, kwargs))

    def run_node(self, n):
        self.current = n.name  # which node a data-dependent op stopped at
        self.node_users = n.users
        return super().run_node(n)

    def call_function(self, target, args, kwargs):
        scalars = self.tracer.scalars
        if scalars is not None and not kwargs and scalars.has_lifted(args, {}) and not isinstance(
                target, torch._ops.OpOverload) and all(not isinstance(a, torch.Tensor) for a in args):
            if not self.node_users:  # a test the front end guarded (`if s > 3`), left in its graph
                return None
            return scalars.arithmetic(target, args)  # Python arithmetic on lifted floats (`s * 2`)
        return super().call_function(target, args, kwargs)


def trace_aten(gm: fx.GraphModule, example_inputs) -> fx.GraphModule:
    """ATen-level GraphModule of `gm` for inputs like `example_inputs`. With symbolic inputs
    (TorchDynamo's SymInts), it traces over the placeholders' own symbolic fake tensors, in their
    fake mode: sizes in the graph are SizeExprs (prims/symbolic.py), size inputs have no placeholder,
    and every decision on a size is a guard in TorchDynamo's ShapeEnv. `.item()` of a 0-dim float
    input stays a tensor where it can (prims/lifted_scalars.py), else it is read at its value."""
    return with_lifted_scalars(lambda lift: _trace_aten(gm, example_inputs, lift))


def with_lifted_scalars(trace):
    """`trace(lift=True)`, or `trace(lift=False)` when a lifted float met a use that needs its value."""
    try:
        return trace(True)
    except ScalarNotLifted as e:
        log.debug("float inputs read at their values: %s", e)
        return trace(False)


def _trace_aten(gm: fx.GraphModule, example_inputs, lift: bool) -> fx.GraphModule:
    symbolic = symbolic_fakes(gm, example_inputs)
    if symbolic is None:
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        fakes = fake_inputs(fake_mode, example_inputs)
    else:
        fake_mode, fakes = symbolic
    tracer = AtenTracer(fake_mode)
    if symbolic is not None:
        tracer.input_values = one_element_inputs(fakes, example_inputs)
    tracer.scalars = LiftedScalars.of(fakes) if lift else None
    result = run_on_fakes(TorchLevelRunner(gm, tracer, fakes), fakes)
    flat, spec = tree_flatten(result)
    outputs = output_infos(flat, [f for f in fakes if isinstance(f, torch.Tensor)])  # placeholders: tensors only
    tracer.graph.output(tuple(tracer.node_of(o) for o in flat))
    aten_gm = fx.GraphModule(tracer.root, tracer.graph)
    aten_gm.meta[OUTPUTS_KEY] = outputs
    aten_gm.meta["out_spec"] = spec
    aten_gm.meta[VALUE_GUARDS_KEY] = tuple(tracer.value_guards)
    return aten_gm


def symbolic_fakes(gm, example_inputs):
    """(fake mode, the placeholders' symbolic values) for a graph with SymInt inputs, else None."""
    if not any(isinstance(x, torch.SymInt) for x in example_inputs):
        return None
    fakes = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
    modes = {id(f.fake_mode): f.fake_mode for f in fakes if isinstance(f, FakeTensor)}
    if len(fakes) != len(example_inputs) or len(modes) > 1 or any(
            not isinstance(f, (FakeTensor, torch.SymInt)) for f in fakes):
        raise UnsupportedGraph("symbolic inputs without one fake mode's example values")
    if not modes:  # only size inputs
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True, shape_env=fakes[0].node.shape_env)
    else:
        fake_mode = next(iter(modes.values()))
    return fake_mode, fakes


VALUE_GUARDS_KEY = "kiln_value_guards"  # gm.meta: ((input position, value), ...) a call must match


def one_element_inputs(fakes, example_inputs) -> dict:
    """id(fake) -> (position, value) for each one-element tensor input: its `.item()` is read
    from the real tensor while tracing, and guarded at call time (kiln/dynamic.py)."""
    return {id(f): (i, x.item()) for i, (f, x) in enumerate(zip(fakes, example_inputs))
            if isinstance(x, torch.Tensor) and not isinstance(x, FakeTensor) and x.numel() == 1
            and isinstance(f, torch.Tensor)}


def fake_inputs(fake_mode: FakeTensorMode, example_inputs) -> list:
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise UnsupportedGraph(f"graph input {i} is a {type(x).__name__}; only tensor inputs are supported")
    return [fake_mode.from_tensor(x, static_shapes=True) for x in example_inputs]


def run_on_fakes(runner: "TorchLevelRunner", fakes):
    """The torch-level graph run on fakes under the recorder; failures as Kiln's errors. With
    lifted floats, any failure (a branch on one in a composite op) and a float result are
    ScalarNotLifted: the caller traces again with their values."""
    scalars = runner.tracer.scalars
    with lifting_failures(scalars):
        result = _run_on_fakes(runner, fakes)
    if scalars is not None and scalars.used and any(isinstance(x, torch.SymFloat) for x in tree_flatten(result)[0]):
        raise ScalarNotLifted("a lifted float is a graph output")
    return result


@contextlib.contextmanager
def lifting_failures(scalars: LiftedScalars | None):
    """Any failure once a float was lifted is ScalarNotLifted (the trace is redone with values)."""
    try:
        yield
    except ScalarNotLifted:
        raise
    except Exception as e:
        if scalars is not None and scalars.used:
            raise ScalarNotLifted(f"{type(e).__name__}: {_first_line(e)}") from e
        raise


def _run_on_fakes(runner: "TorchLevelRunner", fakes):
    tracer = runner.tracer
    try:
        with tracer.fake_mode, _Recorder(tracer):
            return runner.run(*fakes)
    except (DataDependentOutputException, DynamicOutputShapeException) as e:
        raise DataDependentOp(f"an op's output depends on tensor values ({type(e).__name__}: {e}); "
                              "static-shape graphs only for now", getattr(runner, "current", None)) from e
    except UnsupportedOperatorException as e:
        raise UnsupportedGraph(f"no fake-tensor support for {e}") from e
    except RuntimeError as e:
        if not _read_tensor_data(e):
            raise FakeRunError(f"running the graph on fake tensors failed: {type(e).__name__}: {e}") from e
        # a composite op read tensor values in C++ (tensor_split's tensor indices): data-dependent
        raise DataDependentOp(f"an op reads tensor values while tracing ({_first_line(e)})",
                              getattr(runner, "current", None)) from e
    except (TypeError, ValueError, IndexError, ArithmeticError) as e:  # the program's error (1.0 / 0), or a fake kernel's
        raise FakeRunError(f"running the graph on fake tensors failed: {type(e).__name__}: {e}") from e


def output_infos(flat, fakes) -> list:
    """One OutputInfo per flat output: its meta, which input it is, which earlier output it is."""
    input_pos = {id(f): i for i, f in enumerate(fakes)}
    first_pos: dict[int, int] = {}
    outputs = []
    for pos, out in enumerate(flat):
        if not isinstance(out, torch.Tensor):
            outputs.append(OutputInfo(None, None))
            continue
        # Aliasing beyond identity (views of inputs or of each other) is worked out by functionalize.
        outputs.append(OutputInfo(TensorMeta.of(out), input_pos.get(id(out)), first_pos.get(id(out))))
        first_pos.setdefault(id(out), pos)
    return outputs


# what a fake tensor raises when a kernel reads its data (c10's "data is not allocated" check)
_DATA_READ = "but its data is not allocated yet"


def _read_tensor_data(e: RuntimeError) -> bool:
    return _DATA_READ in str(e)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata
