"""ATen level -> prims: run every ATen node through the decomposition registry."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from . import decomp  # noqa: F401  (fills the registry)
from .builder import META_KEY, GraphBuilder, Value
from .decomp.registry import call_aten
from .errors import UnsupportedGraph
from .functionalize import functionalize
from .graph_io import OUTPUTS_KEY
from .prim import Prim


def decompose(aten_gm: fx.GraphModule) -> fx.GraphModule:
    """A GraphModule whose call_function targets are Kiln prims (and explicit fallbacks). The ATen
    graph is functionalized first if it is not yet (graph_io.py says what its outputs mean)."""
    aten_gm = functionalize(aten_gm)
    builder = GraphBuilder()
    env: dict[fx.Node, object] = {}
    root = torch.nn.Module()

    def value_of(a):
        return fx.node.map_arg(a, lambda n: env[n])

    with builder.active():
        for node in aten_gm.graph.nodes:
            meta = node.meta.get(META_KEY)
            if node.op == "placeholder":
                env[node] = builder.placeholder(node.name, meta)
            elif node.op == "get_attr":
                root.register_buffer(node.target, getattr(aten_gm, node.target))
                env[node] = builder.get_attr(node.target, meta)
            elif node.op == "call_function" and node.target is operator.getitem:
                env[node] = env[node.args[0]][node.args[1]]
            elif node.op == "call_function":
                out = call_aten(node.target, *value_of(node.args), _meta=meta, **value_of(node.kwargs))
                _check_result(node, out, meta)
                env[node] = out
            elif node.op == "output":
                metas = [info.meta for info in aten_gm.meta[OUTPUTS_KEY]]
                builder.output(value_of(node.args[0]), metas)
            else:
                raise UnsupportedGraph(f"unexpected {node.op} node {node.name} in an ATen graph")
    gm = fx.GraphModule(root, builder.graph)
    gm.meta.update(aten_gm.meta)
    gm.graph.eliminate_dead_code(is_impure_node=_impure)
    gm.recompile()
    return gm


def _impure(node) -> bool:
    """Prims kept even when nothing reads them (runtime error checks)."""
    return node.is_impure() or (isinstance(node.target, Prim) and bool(node.target.extra.get("impure")))


def _check_result(node, out, meta):
    """A decomposition must give the ATen op's shapes and dtypes; anything else is a Kiln bug."""
    outs = out if isinstance(out, tuple) else (out,)
    metas = meta if isinstance(meta, tuple) else (meta,)
    for o, m in zip(outs, metas):
        if m is None:
            continue
        if not isinstance(o, Value) or tuple(o.shape) != m.shape or o.dtype != m.dtype:
            got = o.meta if isinstance(o, Value) else type(o).__name__
            raise UnsupportedGraph(f"decomposition of {node.target} gave {got}, expected {m} (a Kiln bug)")


def prim_nodes(gm: fx.GraphModule):
    """Call nodes whose target is a prim (every call node of a decomposed graph but getitem)."""
    return [n for n in gm.graph.nodes if n.op == "call_function" and isinstance(n.target, Prim)]
