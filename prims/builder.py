"""Build a prims-level fx graph: `Value` is a symbolic tensor; prims called on Values emit nodes."""
from __future__ import annotations

import contextlib
import operator
import threading

import torch
import torch.fx as fx

from .meta import TensorMeta

META_KEY = "kiln_meta"  # node.meta[META_KEY]: TensorMeta (or tuple of them) of the node's result
# node.meta[ARG_METAS_KEY] on a library call (fallback, extern prim) made for an ATen op of the traced
# graph: (args, kwargs) with each tensor argument replaced by eager's TensorMeta of it (None elsewhere),
# the layout the library must see it in.
ARG_METAS_KEY = "kiln_arg_metas"
# node.meta[FRESH_ARGS_KEY] = True on a library call whose tensor arguments must be fresh copies (a
# complex graph output viewing its (real, imag) pair must not view an input or another output).
FRESH_ARGS_KEY = "kiln_fresh_args"


class Value:
    """A tensor inside the graph being built. Reads like a tensor for metadata, nothing else."""

    __slots__ = ("node", "meta")

    def __init__(self, node: fx.Node, meta: TensorMeta):
        self.node = node
        self.meta = meta

    shape = property(lambda self: self.meta.shape)
    dtype = property(lambda self: self.meta.dtype)
    device = property(lambda self: self.meta.device)
    ndim = property(lambda self: self.meta.ndim)

    def stride(self):
        return self.meta.strides

    def numel(self):
        return self.meta.numel()

    def dim(self):
        return self.meta.ndim

    def __repr__(self):
        return f"Value({self.node.name}: {self.meta})"


_local = threading.local()


def active_builder() -> "GraphBuilder | None":
    return getattr(_local, "builder", None)


def current_builder() -> "GraphBuilder":
    b = getattr(_local, "builder", None)
    if b is None:
        raise RuntimeError("a prim was called on symbolic Values outside a GraphBuilder")
    return b


class GraphBuilder:
    """Owns an fx.Graph; `emit` checks a prim's meta rule and records the call."""

    def __init__(self):
        self.graph = fx.Graph()
        self._seen: dict = {}  # common-subexpression elimination: prims are pure

    @contextlib.contextmanager
    def active(self):
        prev = getattr(_local, "builder", None)
        _local.builder = self
        try:
            yield self
        finally:
            _local.builder = prev

    def placeholder(self, name: str, meta: TensorMeta) -> Value:
        node = self.graph.placeholder(name)
        node.meta[META_KEY] = meta
        return Value(node, meta)

    def get_attr(self, name: str, meta: TensorMeta) -> Value:
        node = self.graph.get_attr(name)
        node.meta[META_KEY] = meta
        return Value(node, meta)

    def emit(self, prim, args, kwargs, meta=None, arg_metas=None, cse=True):
        """`arg_metas`: see ARG_METAS_KEY (calls on the same values in other layouts stay apart).
        `cse=False`: a node of its own even if an equal one exists."""
        args, kwargs = _to_nodes(args), _to_nodes(kwargs)
        key = _cse_key(prim, args, kwargs, arg_metas) if cse else None
        if key is not None and key in self._seen:
            return self._seen[key]
        result = self._emit(prim, args, kwargs, meta, arg_metas)
        if key is not None:
            self._seen[key] = result
        return result

    def _emit(self, prim, args, kwargs, meta, arg_metas):
        if meta is None:
            meta = prim.meta(*_to_metas(args), **_to_metas(kwargs))
        node = self.graph.call_function(prim, args, kwargs)
        node.meta[META_KEY] = meta
        if arg_metas is not None:
            node.meta[ARG_METAS_KEY] = arg_metas
        if isinstance(meta, tuple):
            outs = []
            for i, m in enumerate(meta):
                item = self.graph.call_function(operator.getitem, (node, i))
                item.meta[META_KEY] = m
                outs.append(Value(item, m))
            return tuple(outs)
        return Value(node, meta)

    def mark(self) -> tuple[int, int]:
        """Where the graph stands now, for `new_nodes` and `rollback`."""
        return len(self.graph.nodes), len(self._seen)

    def new_nodes(self, mark) -> list[fx.Node]:
        """Nodes made since `mark`, in order (linear in their number)."""
        count = len(self.graph.nodes) - mark[0]
        return list(reversed([n for _, n in zip(range(count), reversed(self.graph.nodes))]))

    def rollback(self, mark) -> None:
        """Erase what was emitted since `mark` (nothing made before reads it) and forget it for CSE."""
        for node in reversed(self.new_nodes(mark)):
            self.graph.erase_node(node)
        for key in [k for _, k in zip(range(len(self._seen) - mark[1]), reversed(self._seen))]:
            del self._seen[key]

    def output(self, values, metas=None) -> fx.Node:
        node = self.graph.output(_to_nodes(tuple(values)))
        if metas is not None:
            node.meta[META_KEY] = tuple(metas)
        return node


def _to_nodes(x):
    if isinstance(x, Value):
        return x.node
    if isinstance(x, (list, tuple)):
        return type(x)(_to_nodes(a) for a in x)
    if isinstance(x, dict):
        return {k: _to_nodes(v) for k, v in x.items()}
    return x


def _to_metas(x):
    if isinstance(x, fx.Node):
        return x.meta[META_KEY]
    if isinstance(x, (list, tuple)):
        return type(x)(_to_metas(a) for a in x)
    if isinstance(x, dict):
        return {k: _to_metas(v) for k, v in x.items()}
    return x


def metas_of(tree):
    """`tree` (a node's args or kwargs) with each node replaced by its TensorMeta, anything else by None."""
    if isinstance(tree, fx.Node):
        return tree.meta[META_KEY]
    if isinstance(tree, (list, tuple)):
        return type(tree)(metas_of(a) for a in tree)
    if isinstance(tree, dict):
        return {k: metas_of(v) for k, v in tree.items()}
    return None


def _cse_key(prim, args, kwargs, arg_metas=None):
    try:
        key = (prim, _freeze(args), _freeze(kwargs), _freeze(arg_metas))
        hash(key)
        return key
    except TypeError:
        return None


def _freeze(x):
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_freeze(a) for a in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, float):
        return ("float", x, str(x))  # keeps -0.0, and 1.0 apart from 1 and True
    return (type(x).__name__, x)


def is_tensor_like(x) -> bool:
    return isinstance(x, (Value, torch.Tensor, TensorMeta))
