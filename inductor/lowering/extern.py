"""Extern prims -> library calls on realized buffers (strided views are passed without copies)."""
from __future__ import annotations

import functools

from kiln.prims import PRIMS, Category
from kiln.prims.builder import META_KEY

from ..ir.buffers import Layout
from .registry import lowers
from .value import TensorValue


@lowers("matmul")
def matmul(graph, a, b):
    shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    args = (graph.tensor_arg(a, transposable=True), graph.tensor_arg(b, transposable=True))
    return graph.extern("matmul", args, {}, shape, a.dtype, a.device)


def _laid_out(graph, value, node):
    """A library call gets each tensor in the layout the prims graph promised it (its node's strides):
    a strided view of a buffer when that is the layout, else a copy into it."""
    if isinstance(value, TensorValue):
        meta = node.meta[META_KEY]
        arg = graph.tensor_arg(value)
        if all(a == b for a, b, n in zip(arg.strides, meta.strides, meta.shape) if n != 1) or value.ndim == 0:
            return arg
        layout = Layout(tuple(meta.shape), tuple(meta.strides), value.dtype, value.device)
        return graph.tensor_arg(graph.realize(value, layout))
    if isinstance(value, (list, tuple)):
        return type(value)(_laid_out(graph, v, n) for v, n in zip(value, node))
    if isinstance(value, dict):
        return {k: _laid_out(graph, v, node[k]) for k, v in value.items()}
    return value


def _call(graph, kind, fn, args, kwargs):
    node = graph.current_node
    first = 1 if kind == "fallback" else 0  # a fallback's first argument is the ATen op
    args = _laid_out(graph, tuple(args), tuple(node.args[first:]))
    kwargs = _laid_out(graph, dict(kwargs), dict(node.kwargs))
    return graph.extern_call(kind, fn, args, kwargs, node.meta[META_KEY])


@lowers("fallback")
def fallback(graph, op, *args, **kwargs):
    return _call(graph, "fallback", op, args, kwargs)


def _extern(prim, graph, *args, **kwargs):
    """An extern prim: the generated code calls its reference (which calls ATen) on buffer views."""
    return _call(graph, "extern", prim.ref, args, kwargs)


for _prim in PRIMS.values():
    if _prim.category is Category.EXTERN and _prim.name != "matmul":
        lowers(_prim.name)(functools.partial(_extern, _prim))
