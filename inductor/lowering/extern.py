"""Extern prims -> library calls on realized buffers (strided views are passed without copies)."""
from __future__ import annotations

import functools

from kiln.prims import PRIMS, Category
from kiln.prims.builder import ARG_METAS_KEY, FRESH_ARGS_KEY, META_KEY, metas_of
from kiln.prims.eager_strides import preserved_strides

from ..ir.buffers import Layout, TensorArg
from .registry import lowers
from .value import TensorValue


@lowers("matmul")
def matmul(graph, a, b):
    shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    args = (graph.tensor_arg(a, transposable=True), graph.tensor_arg(b, transposable=True))
    return graph.extern("matmul", args, {}, shape, a.dtype, a.device)


def _laid_out(graph, value, meta, fresh=False):
    """A library call gets each tensor in the layout `meta` promises (eager's, or the prims graph's):
    a strided view of a buffer when that is the layout, with the very strides of `meta` (size-1 dims'
    included: memory-format checks read them), else a copy into it (dense, in `meta`'s dim order,
    when `meta` itself has gaps or overlaps). `fresh` (FRESH_ARGS_KEY): always a copy of its own."""
    if isinstance(value, TensorValue):
        view = None if fresh else graph.strided_view(value)
        if view is not None and _same_strides(view.strides, meta.strides, meta.shape):
            return TensorArg(view.buffer, view.shape, tuple(meta.strides), view.offset)
        strides = preserved_strides(tuple(meta.shape), tuple(meta.strides))
        if view is not None and _same_strides(view.strides, strides, meta.shape):
            return TensorArg(view.buffer, view.shape, strides, view.offset)  # already laid out as the copy would be
        layout = Layout(tuple(meta.shape), strides, value.dtype, value.device)
        return TensorArg(graph.realize(value, layout).buffer, tuple(meta.shape), strides, 0)
    if isinstance(value, (list, tuple)):
        return type(value)(_laid_out(graph, v, m, fresh) for v, m in zip(value, meta))
    if isinstance(value, dict):
        return {k: _laid_out(graph, v, meta[k], fresh) for k, v in value.items()}
    return value


def _same_strides(strides, wanted, shape) -> bool:
    return all(a == b for a, b, n in zip(strides, wanted, shape) if n != 1)


def _call(graph, kind, fn, args, kwargs):
    node = graph.current_node
    first = 1 if kind == "fallback" else 0  # a fallback's first argument is the ATen op
    arg_metas, kwarg_metas = node.meta.get(ARG_METAS_KEY) or (metas_of(node.args), metas_of(node.kwargs))
    fresh = bool(node.meta.get(FRESH_ARGS_KEY))
    args = _laid_out(graph, tuple(args), tuple(arg_metas[first:]), fresh)
    kwargs = _laid_out(graph, dict(kwargs), dict(kwarg_metas), fresh)
    return graph.extern_call(kind, fn, args, kwargs, node.meta[META_KEY])


@lowers("fallback")
def fallback(graph, op, *args, **kwargs):
    return _call(graph, "fallback", op, args, kwargs)


def _extern(prim, graph, *args, **kwargs):
    """An extern prim: the generated code calls its ATen op (what its reference calls) on buffer views;
    the memory plan reads the op's schema (a result that views an argument keeps it alive)."""
    return _call(graph, "extern", prim.extra.get("aten", prim.ref), args, kwargs)


for _prim in PRIMS.values():
    if _prim.category is Category.EXTERN and _prim.name != "matmul":
        lowers(_prim.name)(functools.partial(_extern, _prim))
