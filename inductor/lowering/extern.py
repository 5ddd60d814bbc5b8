"""Extern prims -> library calls on realized buffers (strided views are passed without copies)."""
from __future__ import annotations

from prims.builder import META_KEY

from .registry import lowers


@lowers("matmul")
def matmul(graph, a, b):
    shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    args = (graph.tensor_arg(a, transposable=True), graph.tensor_arg(b, transposable=True))
    return graph.extern("matmul", args, {}, shape, a.dtype, a.device)


@lowers("fallback")
def fallback(graph, op, *args, **kwargs):
    meta = graph.current_node.meta[META_KEY]
    if isinstance(meta, tuple):
        from prims.errors import UnsupportedGraph

        raise UnsupportedGraph(f"fallback op {op} has several outputs (not supported yet)")
    conv = graph.tensor_args_in
    return graph.extern("fallback", conv(args), conv(kwargs), meta.shape, meta.dtype, meta.device, op=op,
                        strides=meta.strides)
