"""ATen level -> prims: run every ATen node through the decomposition registry."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from . import decomp  # noqa: F401  (fills the registry)
from . import op_fallback
from .builder import META_KEY, GraphBuilder, Value, current_builder, metas_of
from .decomp.complex import COMPLEX_DECOMPOSITIONS, PAIR_DTYPE, complex_output, pair_of, to_complex
from .decomp.extern import EXTERN_PRIMS
from .decomp.movement import OWN_STORAGE_DECOMPOSITIONS
from .decomp.registry import CPU_DTYPE_DIFFERS, DECOMPOSITIONS, call_aten, fallback_call
from .eager_strides import preserved_strides
from .errors import UnsupportedGraph
from .functionalize import functionalize
from .graph_io import OUTPUTS_KEY
from .meta import TensorMeta, contiguous_strides
from .prim import PRIMS, Prim

aten = torch.ops.aten


def decompose(aten_gm: fx.GraphModule, *, renderable=None, target: str = "this target") -> fx.GraphModule:
    """A GraphModule whose call_function targets are Kiln prims (and explicit fallbacks). The ATen
    graph is functionalized first if it is not yet (graph_io.py says what its outputs mean).
    `renderable`: the dtypes `target`'s kernels can compute in (None: all); an ATen op that needs
    another runs as is (op_fallback.py)."""
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
                out = _decompose_node(builder, node, value_of, renderable, target)
                _check_result(node, out, meta)
                env[node] = out
            elif node.op == "output":
                infos = aten_gm.meta[OUTPUTS_KEY]
                outs = value_of(node.args[0])
                if len(outs) == len(infos):
                    outs = [complex_output(v, info) for v, info in zip(outs, infos)]
                builder.output(outs, [info.meta for info in infos])
            else:
                raise UnsupportedGraph(f"unexpected {node.op} node {node.name} in an ATen graph")
    gm = fx.GraphModule(root, builder.graph)
    gm.meta.update(aten_gm.meta)
    gm.graph.eliminate_dead_code(is_impure_node=_impure)
    gm.recompile()
    return gm


def _decompose_node(builder, node, value_of, renderable, target):
    """One ATen node as prims, or as a kiln.fallback when a dtype it needs cannot be rendered."""
    out = _complex_decomposition(builder, node, value_of, renderable, target)
    if out is not None:
        return out
    if node.target in EXTERN_PRIMS or renderable is None:  # extern prims are library calls: any dtype
        return _decompose_plain(node, value_of)
    reason = op_fallback.aten_node_reason(node, renderable, target)
    if reason is None:
        mark = builder.mark()
        out = _decompose_plain(node, value_of)
        reason = op_fallback.emitted_reason(builder.new_nodes(mark), renderable, target)
        if reason is None:
            return out
        builder.rollback(mark)
    if node.target in OWN_STORAGE_DECOMPOSITIONS:
        if _whole_storage_root(node.args[0]).op not in ("placeholder", "get_attr"):
            out = _complex_own_storage(node, value_of)
            if out is not None:
                return out
            raise UnsupportedGraph(f"{node.target} of an op result in a dtype the target cannot render ({reason}): "
                                   "a fallback would see a row-major copy, not eager's storage")
        return _own_storage_decomposition(node, value_of)
    return _library_call(node, value_of, reason=reason)


def _complex_decomposition(builder, node, value_of, renderable, target):
    """A complex op as real prims on (real, imag) pairs (decomp/complex.py), or None: no such
    decomposition, it declined these arguments, or what it emitted cannot be rendered either."""
    fn = COMPLEX_DECOMPOSITIONS.get(node.target)
    if fn is None or not op_fallback.involves_complex(node):
        return None
    mark = builder.mark()
    out = fn(node.meta.get(META_KEY), *value_of(node.args), **value_of(node.kwargs))
    if out is not None and (renderable is None or
                            op_fallback.emitted_reason(builder.new_nodes(mark), renderable, target) is None):
        return out
    builder.rollback(mark)
    return None


def _decompose_plain(node, value_of):
    out = _own_storage_decomposition(node, value_of)
    if out is None:
        out = _library_call(node, value_of)
    if out is None:
        out = call_aten(node.target, *value_of(node.args), _meta=node.meta.get(META_KEY), **value_of(node.kwargs))
    return out


def _own_storage_decomposition(node, value_of):
    """Storage-addressing ops (as_strided) on x, where x is a fresh op result or a graph input, or a
    view of one that keeps all of its storage and offset (so as_strided(x) = as_strided(root)).
    A fresh result owns its storage, laid out by x's strides: decomposed. A graph input: a fallback
    on the input itself, which sees the caller's storage. Anything else is unsupported, as a
    fallback would see a row-major copy, not eager's storage (a wrong answer)."""
    fn = OWN_STORAGE_DECOMPOSITIONS.get(node.target)
    if fn is None:
        return None
    src = node.args[0]
    root = _whole_storage_root(src)
    _, *rest = value_of(node.args)
    kwargs = value_of(node.kwargs)
    if root.op in ("placeholder", "get_attr"):
        _, *rest_metas = metas_of(node.args)
        return fallback_call(node.target, value_of(root), *rest, _meta=node.meta[META_KEY],
                             _arg_metas=((root.meta[META_KEY], *rest_metas), metas_of(node.kwargs)), **kwargs)
    out = fn(value_of(src), src.meta[META_KEY].stride(), *rest, **kwargs) if _is_fresh(root) else None
    if out is None:
        raise UnsupportedGraph(f"{node.target} of {src.name} reads storage outside its elements' row-major "
                               "order (a view or a non-dense result), which Kiln's buffers do not keep")
    return out


def _complex_own_storage(node, value_of):
    """as_strided of a complex tensor that owns its storage, on its (..., 2) pair: the pair's storage
    is the same bytes (strides and offset twice the complex ones, the pair dim last with stride 1),
    so the real as_strided of the pair, viewed as complex, is eager's. None when it does not apply."""
    src = node.args[0]
    meta = src.meta[META_KEY]
    if not meta.dtype.is_complex or not _is_fresh(_whole_storage_root(src)):
        return None
    size, stride, *offset = value_of(node.args[1:])
    offset = (offset[0] if offset else None) or 0
    pair = pair_of(value_of(src))
    out = OWN_STORAGE_DECOMPOSITIONS[node.target](pair, tuple(2 * st for st in meta.strides) + (1,), [*size, 2],
                                                  [2 * st for st in stride] + [1], 2 * offset)
    return None if out is None else to_complex(out)


def _library_call(node, value_of, reason=None):
    """An ATen op a library runs (an extern prim, or a fallback: no decomposition) gets each tensor
    argument in eager's layout, the ATen trace's, so that what depends on layout (resize_as keeps
    its input's storage order, as_strided_scatter writes its clone's storage, memory-format checks
    read size-1 dims' strides) and the library's own numerics and result strides are eager's.
    Decompositions' inner calls see prims layouts, which is all they assume."""
    prim = EXTERN_PRIMS.get(node.target)
    if prim is None and reason is None and node.target in DECOMPOSITIONS:
        return None
    meta, arg_metas = node.meta[META_KEY], (metas_of(node.args), metas_of(node.kwargs))  # the ATen graph's: eager's
    args, kwargs = _pairs_laid_out(value_of(node.args), arg_metas[0]), _pairs_laid_out(value_of(node.kwargs), arg_metas[1])
    if prim is None:
        return fallback_call(node.target, *args, _meta=meta, _arg_metas=arg_metas, _reason=reason, **kwargs)
    return current_builder().emit(prim, args, kwargs, meta=meta, arg_metas=arg_metas)


def _pairs_laid_out(value, meta):
    """A complex argument computed as a pair, laid out as the library call gets it (eager's strides,
    or their dense copy's): the pair's kernel writes it so (twice the strides), since the lowering
    could copy a complex buffer into that layout only with a complex kernel."""
    if isinstance(value, Value) and isinstance(meta, TensorMeta) and value.dtype in PAIR_DTYPE \
            and value.node.target is PRIMS["view_as_complex"]:
        strides = preserved_strides(tuple(meta.shape), tuple(meta.strides))
        if strides != contiguous_strides(tuple(meta.shape)):
            return to_complex(pair_of(value), strides)
        return value
    if isinstance(value, (list, tuple)) and isinstance(meta, (list, tuple)):
        return type(value)(_pairs_laid_out(v, m) for v, m in zip(value, meta))
    if isinstance(value, dict) and isinstance(meta, dict):
        return {k: _pairs_laid_out(v, meta.get(k)) for k, v in value.items()}
    return value


# Views that keep all of their input's storage and its offset (only the strides change).
_WHOLE_STORAGE_VIEWS = {aten.view.default, aten._unsafe_view.default, aten.alias.default, aten.unsqueeze.default,
                        aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.permute.default,
                        aten.transpose.int, aten.t.default}


def _whole_storage_root(node: fx.Node) -> fx.Node:
    while node.op == "call_function" and node.target in _WHOLE_STORAGE_VIEWS:
        node = node.args[0]
    return node


def _is_fresh(node: fx.Node) -> bool:
    """An op result that owns its storage (no view op made it)."""
    while node.op == "call_function" and node.target is operator.getitem:
        node = node.args[0]
    return node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload) and \
        all(r.alias_info is None for r in node.target._schema.returns)


def _impure(node) -> bool:
    """Prims kept even when nothing reads them (runtime error checks)."""
    return node.is_impure() or (isinstance(node.target, Prim) and bool(node.target.extra.get("impure")))


def _check_result(node, out, meta):
    """A decomposition must give the ATen op's shapes and dtypes; anything else is a Kiln bug."""
    outs = out if isinstance(out, tuple) else (out,)
    metas = meta if isinstance(meta, tuple) else (meta,)
    free = CPU_DTYPE_DIFFERS.get(node.target, ())  # outputs whose dtype eager's CPU kernel decides, not meta
    for i, (o, m) in enumerate(zip(outs, metas)):
        if m is None:
            continue
        if not isinstance(o, Value) or tuple(o.shape) != m.shape or (o.dtype != m.dtype and i not in free):
            got = o.meta if isinstance(o, Value) else type(o).__name__
            raise UnsupportedGraph(f"decomposition of {node.target} gave {got}, expected {m} (a Kiln bug)")


def prim_nodes(gm: fx.GraphModule):
    """Call nodes whose target is a prim (every call node of a decomposed graph but getitem)."""
    return [n for n in gm.graph.nodes if n.op == "call_function" and isinstance(n.target, Prim)]


def fallback_nodes(gm: fx.GraphModule):
    """`kiln.fallback` nodes: ATen ops with no decomposition, run as they are."""
    fallback = PRIMS["fallback"]
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is fallback]
