"""The decomposition registry: ATen overload -> a Python function over Values that calls prims.

A decomposition may call other ATen ops through `call_aten`, which decomposes them in turn,
so decomposition reaches a fixed point by construction. An op with no entry becomes an
explicit `kiln.fallback` node that runs the ATen op as is.
"""
from __future__ import annotations

import dataclasses
import operator
from typing import Callable

import torch
from torch._ops import OpOverload, OpOverloadPacket

from ..builder import Value, current_builder
from ..meta import TensorMeta
from ..ops.extern import fallback
from ..errors import UnsupportedGraph
from ..op_fallback import FALLBACK_REASON_KEY

class _Decompositions(dict):
    """ATen overload -> decomposition. Ops that exist only once another library defines them
    (inductor's `prims.fma`, which graphs TorchDynamo traces through torch.optim call once torch
    has imported inductor) are registered by schema name (`register_by_name`) and found on first use."""

    by_name: dict[str, Callable] = {}

    def _late(self, op):
        fn = self.by_name.get(op._schema.name) if isinstance(op, OpOverload) else None
        if fn is not None:
            self[op] = fn
        return fn

    def get(self, op, default=None):
        found = dict.get(self, op)
        return found if found is not None else (self._late(op) or default)

    def __contains__(self, op) -> bool:
        return dict.__contains__(self, op) or self._late(op) is not None


DECOMPOSITIONS: dict[OpOverload, Callable] = _Decompositions()


def register_by_name(name: str) -> Callable:
    """Decorator for an op defined by a library Kiln does not import (`"prims::fma"`)."""

    def wrap(fn):
        _Decompositions.by_name[name] = fn
        return fn

    return wrap

# ATen ops deliberately left to kiln.fallback, and why (printed by tests/prims_coverage.py).
FALLBACK_REASONS = {
    "aten.as_strided.default": "indexes its input's storage (offset, strides), which prims do not model; "
                               "kiln.as_strided works on row-major elements (decomposed only on a fresh op "
                               "result, which owns its storage: prims/decompose.py)",
    "aten.as_strided_copy.default": "as aten.as_strided",
}

# ATen op -> output positions whose dtype eager's CPU kernel gives otherwise than the op's meta function
# (fake tensors); the decomposition gives eager's (prims/decompose.py checks the other outputs' dtypes).
CPU_DTYPE_DIFFERS: dict[OpOverload, tuple[int, ...]] = {}


def register(*ops) -> Callable:
    """Decorator: `@register(aten.add.Tensor, aten.add.Scalar)`; a packet registers all its overloads."""

    def wrap(fn):
        for op in ops:
            overloads = [getattr(op, o) for o in op.overloads()] if isinstance(op, OpOverloadPacket) else [op]
            for ov in overloads:
                DECOMPOSITIONS[ov] = fn
        return fn

    return wrap


def call_aten(op: OpOverload, *args, _meta=None, **kwargs):
    """Decompose one ATen call on Values; unknown ops become fallback nodes."""
    fn = DECOMPOSITIONS.get(op)
    if fn is not None:
        return fn(*args, **kwargs)
    return fallback_call(op, *args, _meta=_meta, **kwargs)


def fallback_call(op: OpOverload, *args, _meta=None, _arg_metas=None, _reason=None, **kwargs):
    """An explicit kiln.fallback node running `op` as is (also for inputs its decomposition does not cover).
    `_arg_metas`: eager's layouts of the arguments, as (args, kwargs) (builder.ARG_METAS_KEY);
    `_reason`: why it falls back (op_fallback.FALLBACK_REASON_KEY; default: no decomposition)."""
    if op._schema.is_mutable:
        raise UnsupportedGraph(f"in-place op {op} inside a decomposition")
    meta = _meta if _meta is not None else _meta_by_running(op, args, kwargs)
    if _arg_metas is not None:
        _arg_metas = ((None,) + tuple(_arg_metas[0]), _arg_metas[1])  # the fallback's first argument is the op
    out = current_builder().emit(fallback, (op,) + tuple(args), kwargs, meta=meta, arg_metas=_arg_metas)
    if _reason is not None:
        node = (out[0] if isinstance(out, tuple) else out).node
        node = node.args[0] if node.target is operator.getitem else node
        node.meta[FALLBACK_REASON_KEY] = _reason
    return out


def _meta_by_running(op, args, kwargs):
    """The op's result metadata, run on meta tensors: on the device it names, else its first tensor
    argument's (not "meta": a later decomposition compares devices); None for an undefined result."""
    values = []

    def to_meta(x):
        if isinstance(x, Value):
            values.append(x)
            return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
        if isinstance(x, (list, tuple)):
            return type(x)(to_meta(a) for a in x)
        return x

    meta_args = to_meta(args)
    meta_kwargs = {k: "meta" if k == "device" and v is not None else to_meta(v) for k, v in kwargs.items()}
    out = op(*meta_args, **meta_kwargs)
    device = torch.device(kwargs.get("device") or (values[0].device if values else "cpu"))

    def meta_of(o):
        return None if o is None else dataclasses.replace(TensorMeta.of(o), device=device)

    return tuple(map(meta_of, out)) if isinstance(out, (tuple, list)) else meta_of(out)
