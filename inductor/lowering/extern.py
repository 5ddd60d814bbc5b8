"""Extern prims -> library calls on realized buffers (strided views are passed without copies)."""
from __future__ import annotations

import functools

from prims import PRIMS, Category
from prims.builder import META_KEY

from .registry import lowers


@lowers("matmul")
def matmul(graph, a, b):
    shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    return graph.extern("matmul", (graph.tensor_arg(a), graph.tensor_arg(b)), {}, shape, a.dtype, a.device)


@lowers("fallback")
def fallback(graph, op, *args, **kwargs):
    conv = graph.tensor_args_in
    return graph.extern_call("fallback", op, conv(args), conv(kwargs), graph.current_node.meta[META_KEY])


def _extern(prim, graph, *args, **kwargs):
    """An extern prim: the generated code calls its reference (which calls ATen) on buffer views."""
    conv = graph.tensor_args_in
    return graph.extern_call("extern", prim.ref, conv(args), conv(kwargs), graph.current_node.meta[META_KEY])


for _prim in PRIMS.values():
    if _prim.category is Category.EXTERN and _prim.name != "matmul":
        lowers(_prim.name)(functools.partial(_extern, _prim))
