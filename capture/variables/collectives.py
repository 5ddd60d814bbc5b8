"""torch.distributed calls inside a captured function.

Collectives on tensors are recorded as functional collectives (`_c10d_functional` ops, then
`wait_tensor`), as TorchDynamo records them: `dist.all_reduce(t)` becomes
`t.copy_(wait_tensor(all_reduce(t, "sum", group)))`, so a graph holds them in program order and
every rank runs the same sequence. Queries (`get_rank`, `get_world_size`, ...) are constants of
the graph, guarded. Anything else in torch.distributed (async_op=True, send/recv, barrier, lists
of tensors) breaks the graph: the call runs eagerly between two graphs.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from ..exc import Unsupported
from .base import VariableTracker
from .constant_values import wrap_constant
from .tensor import TensorVariable
from .torch import _guard_query

if dist.is_available():
    import torch.distributed._functional_collectives as funcol

    FUNCTIONAL = torch.ops._c10d_functional
    REDUCE_OPS = {dist.ReduceOp.SUM: "sum", dist.ReduceOp.AVG: "avg", dist.ReduceOp.PRODUCT: "product",
                  dist.ReduceOp.MIN: "min", dist.ReduceOp.MAX: "max"}
    QUERIES = {dist.get_rank, dist.get_world_size, dist.is_initialized, dist.is_available, dist.get_backend}


def is_distributed_value(value) -> bool:
    """A process group or reduce op, read from outside (dist.group.WORLD, dist.ReduceOp.MAX)."""
    return dist.is_available() and isinstance(value, (dist.ProcessGroup, dist.ReduceOp, dist.ReduceOp.RedOpType))


class DistributedValueVariable(VariableTracker):
    """A process group or reduce op: an argument of collectives, never traced into (its identity is guarded)."""

    def __init__(self, value, source=None):
        super().__init__(source)
        self.value = value

    def as_python_constant(self):
        return self.value

    def __repr__(self) -> str:
        return f"DistributedValueVariable({self.value!r})"


def is_distributed_callable(value) -> bool:
    module = getattr(value, "__module__", None) or ""
    return callable(value) and not isinstance(value, type) and module.startswith("torch.distributed")


def _value(var: VariableTracker | None, what: str):
    """The Python object behind a non-tensor argument (a constant, a process group read from outside)."""
    if var is None:
        return None
    try:
        return var.as_python_constant()
    except Unsupported:
        if getattr(var, "value", None) is not None:
            return var.value
        raise Unsupported(f"torch.distributed call with a {what} capture cannot read ({var!r})") from None


def _bind(fn, args, kwargs) -> dict:
    import inspect

    try:
        return inspect.signature(fn).bind(*args, **kwargs).arguments
    except TypeError as error:
        raise Unsupported(f"{fn.__name__}(): {error}") from None


def _process_group(var: VariableTracker | None):
    group = _value(var, "group")
    if group is None:
        return dist.group.WORLD
    if not isinstance(group, dist.ProcessGroup):  # ranks lists, device meshes: left to eager
        raise Unsupported(f"collective on group {group!r} (only process groups are traced)")
    return group


def _record(tx, op, tensor: TensorVariable, *constants) -> TensorVariable:
    result = tx.output.call_op("call_function", op, [tensor, *map(wrap_constant, constants)], {})
    return tx.output.call_op("call_function", FUNCTIONAL.wait_tensor.default, [result], {})


def _reduce_op(op) -> str:
    if isinstance(op, str):
        return op.lower()
    if op not in REDUCE_OPS:
        raise Unsupported(f"collective with reduce op {op!r}")
    return REDUCE_OPS[op]


def _tensor(var, what: str) -> TensorVariable:
    if not isinstance(var, TensorVariable):
        raise Unsupported(f"collective on a {what} that is not a tensor ({var!r})")
    return var


def _in_place(tx, target: TensorVariable, result: TensorVariable) -> VariableTracker:
    tx.output.call_op("call_method", "copy_", [target, result], {})
    return wrap_constant(None)


def _all_reduce(tx, a):
    tensor, group = _tensor(a["tensor"], "tensor"), _process_group(a.get("group"))
    op = _reduce_op(_value(a.get("op"), "op") or dist.ReduceOp.SUM)
    result = _record(tx, FUNCTIONAL.all_reduce.default, tensor, op, group.group_name)
    return _in_place(tx, tensor, result)


def _broadcast(tx, a):
    tensor, group = _tensor(a["tensor"], "tensor"), _process_group(a.get("group"))
    src, group_src = _value(a.get("src"), "src"), _value(a.get("group_src"), "group_src")
    if group_src is None:
        group_src = dist.get_group_rank(group, src)
    result = _record(tx, FUNCTIONAL.broadcast.default, tensor, group_src, group.group_name)
    return _in_place(tx, tensor, result)


def _all_gather_into_tensor(tx, a):
    output, tensor = _tensor(a["output_tensor"], "output"), _tensor(a["input_tensor"], "input")
    group = _process_group(a.get("group"))
    result = _record(tx, FUNCTIONAL.all_gather_into_tensor.default, tensor, dist.get_world_size(group),
                     group.group_name)
    return _in_place(tx, output, result)


def _reduce_scatter_tensor(tx, a):
    output, tensor = _tensor(a["output"], "output"), _tensor(a["input"], "input")
    group = _process_group(a.get("group"))
    op = _reduce_op(_value(a.get("op"), "op") or dist.ReduceOp.SUM)
    result = _record(tx, FUNCTIONAL.reduce_scatter_tensor.default, tensor, op, dist.get_world_size(group),
                     group.group_name)
    return _in_place(tx, output, result)


def _functional(name, extra):
    """funcol.<name>(self, ..., group, tag=""): the op on `self`, then wait_tensor; a plain tensor
    where eager gives an AsyncCollectiveTensor that waits when first used."""
    def record(tx, a):
        tensor, group = _tensor(a["self"], "tensor"), _process_group(a["group"])
        return _record(tx, getattr(FUNCTIONAL, name).default, tensor, *extra(a, group), group.group_name)
    return record


def _dim0(a, key):
    dim = _value(a.get(key), key)
    if dim not in (None, 0):
        raise Unsupported(f"functional collective along dim {dim} (only dim 0 is traced)")


def _gather_constants(a, group):
    _dim0(a, "gather_dim")
    return (dist.get_world_size(group),)


def _scatter_constants(a, group):
    _dim0(a, "scatter_dim")
    return (_reduce_op(_value(a["reduceOp"], "op")), dist.get_world_size(group))


if dist.is_available():
    COLLECTIVES = {
        dist.all_reduce: _all_reduce,
        dist.broadcast: _broadcast,
        dist.all_gather_into_tensor: _all_gather_into_tensor,
        dist.reduce_scatter_tensor: _reduce_scatter_tensor,
        funcol.all_reduce: _functional("all_reduce", lambda a, g: (_reduce_op(_value(a["reduceOp"], "op")),)),
        funcol.broadcast: _functional("broadcast", lambda a, g: (_value(a["src"], "src"),)),  # a group rank
        funcol.all_gather_tensor: _functional("all_gather_into_tensor", _gather_constants),
        funcol.reduce_scatter_tensor: _functional("reduce_scatter_tensor", _scatter_constants),
    }
else:
    COLLECTIVES, QUERIES = {}, set()


class DistributedFunctionVariable(VariableTracker):
    """A torch.distributed function: a collective recorded functionally, a guarded query, or a graph break."""

    def __init__(self, fn, source=None):
        super().__init__(source)
        self.fn = fn

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        name = f"torch.distributed.{getattr(self.fn, '__name__', repr(self.fn))}"
        if self.fn in QUERIES:
            values = [_value(a, "argument") for a in args]
            kw = {k: _value(v, "argument") for k, v in kwargs.items()}
            result = self.fn(*values, **kw)
            if all(v is None or isinstance(v, (int, str, bool)) for v in (*values, *kw.values())):
                _guard_query(tx, self.fn, [wrap_constant(v) for v in values],
                             {k: wrap_constant(v) for k, v in kw.items()}, result)
                return wrap_constant(result)
            raise Unsupported(f"{name}() on a process group object")
        record = COLLECTIVES.get(self.fn)
        if record is None:
            raise Unsupported(f"call to {name}() (runs eagerly between graphs)",
                              hint="collectives on tensors (all_reduce, broadcast, all_gather_into_tensor, "
                                   "reduce_scatter_tensor and their functional forms) are traced")
        bound = _bind(self.fn, args, kwargs)
        if _value(bound.get("async_op"), "async_op"):
            raise Unsupported(f"{name}(..., async_op=True) (runs eagerly between graphs)")
        return record(tx, bound)

    def __repr__(self) -> str:
        return f"DistributedFunctionVariable({getattr(self.fn, '__name__', self.fn)})"
