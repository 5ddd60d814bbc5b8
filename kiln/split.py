"""A graph holding a data-dependent op (nonzero, unique, masked_select, item: its result's shape or
value depends on tensor values, which Kiln's static-shape kernels cannot know) is split there
instead of running eagerly as a whole: the part before the op is compiled once, the op runs
eagerly, and the part after it is compiled at call time for the shapes and Python values the op
gave, and cached by them (at most `config.recompile_limit` versions; after that it runs eagerly).
Python values (an `item()`) become constants of the tail, so each distinct value is a version.
"""
from __future__ import annotations

import itertools
import threading
from typing import Callable

import torch
import torch.fx as fx

from . import config
from .fallback import EagerGraph, warn

SPLIT_REASON = "its result's shape or value depends on tensor values: the graph is split there"


def op_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_module":
        return f"module {node.target}"
    module = getattr(node.target, "__module__", None) or ""
    name = getattr(node.target, "__name__", str(node.target))
    return f"{'torch' if module.startswith('torch') else module}.{name}".lstrip(".")


def split_at(gm: fx.GraphModule, name: str, example_inputs, compile_part: Callable) -> Callable:
    """gm as head (compiled now) -> the op named `name` (eager) -> tail (compiled per call signature)."""
    nodes = list(gm.graph.nodes)
    order = {n: i for i, n in enumerate(nodes)}
    op = next(n for n in nodes if n.name == name)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    head = [n for n in nodes[:order[op]] if n.op != "placeholder"]
    tail = [n for n in nodes[order[op] + 1:] if n.op != "output"]
    output = nodes[-1]
    crossing = _read_by([op, *tail, output], lambda n: order[n] < order[op] and n.op != "placeholder")
    head_gm = _graph(gm, placeholders, head, tuple(crossing))
    has_ops = any(n.op.startswith("call_") for n in head)
    head_call = compile_part(head_gm, example_inputs) if has_ops else EagerGraph(head_gm)
    tail_inputs = _read_by([*tail, output], lambda n: order[n] <= order[op])
    return _SplitGraph(gm, placeholders, crossing, head_call, op, tail_inputs, tail, output, compile_part)


def _read_by(readers, keep) -> list[fx.Node]:
    """Nodes the readers take as arguments that `keep` accepts, once each, in first-read order."""
    seen: dict[fx.Node, None] = {}
    for r in readers:
        fx.node.map_arg((r.args, r.kwargs), lambda a: seen.setdefault(a, None) if keep(a) else None)
    return list(seen)


def _graph(root, placeholders, body, outputs) -> fx.GraphModule:
    g = fx.Graph()
    env = {p: g.node_copy(p) for p in placeholders}
    for n in body:
        env[n] = g.node_copy(n, lambda a: env[a])
    g.output(fx.node.map_arg(outputs, lambda a: env[a]))
    return fx.GraphModule(root, g)


class _SplitGraph:
    def __init__(self, gm, placeholders, crossing, head_call, op, tail_inputs, tail, output, compile_part):
        self.gm, self.placeholders, self.crossing, self.head_call = gm, placeholders, crossing, head_call
        self.op, self.tail_inputs, self.tail, self.output = op, tail_inputs, tail, output
        self.compile_part = compile_part
        self.tails: dict[tuple, Callable] = {}
        self.lock = threading.Lock()
        self.warned = False

    def __call__(self, *args):
        env = dict(zip(self.placeholders, args))
        env.update(zip(self.crossing, self.head_call(*args)))
        env[self.op] = _run_node(self.gm, self.op, env)
        values = [env[n] for n in self.tail_inputs]
        key = tuple(value_key(v) for v in values)
        tail = self.tails.get(key)
        if tail is None:
            with self.lock:
                tail = self.tails.get(key) or self._new_tail(key, values)
        if tail is _EAGER:
            for n in self.tail:
                env[n] = _run_node(self.gm, n, env)
            return fx.node.map_arg(self.output.args[0], lambda a: env[a])
        return tail(*[t for v in values for t in _tensors(v)])

    def _new_tail(self, key, values):
        if len(self.tails) >= config.recompile_limit:
            if not self.warned:
                self.warned = True
                warn(f"the part of a graph after {op_name(self.op)} saw more than {config.recompile_limit} "
                     "input shapes or values; running it eagerly")
            return _EAGER
        g = fx.Graph()
        count = itertools.count()
        env = {n: _as_arg(v, g, count) for n, v in zip(self.tail_inputs, values)}
        for n in self.tail:
            env[n] = g.node_copy(n, lambda a: env[a])
        g.output(fx.node.map_arg(self.output.args[0], lambda a: env[a]))
        tail_gm = fx.GraphModule(self.gm, g)
        tensors = [t for v in values for t in _tensors(v)]
        self.tails[key] = tail = self.compile_part(tail_gm, tensors)
        return tail


_EAGER = object()  # a tail past the version limit: its nodes run eagerly


def _as_arg(value, g: fx.Graph, count):
    """A tail graph's stand-in for a value: a placeholder per tensor, Python values as constants."""
    if isinstance(value, torch.Tensor):
        return g.placeholder(f"in{next(count)}")
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return type(value)(_as_arg(v, g, count) for v in value)
    return value


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return [t for v in value for t in _tensors(v)]
    return []


def value_key(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.stride(), value.storage_offset(), value.dtype, value.device,
                value.requires_grad)
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return (type(value).__name__,) + tuple(value_key(v) for v in value)
    return (type(value).__name__, repr(value))  # repr keeps -0.0 and nan apart from 0.0


def _run_node(gm, node, env):
    args = fx.node.map_arg(node.args, lambda a: env[a])
    kwargs = fx.node.map_arg(node.kwargs, lambda a: env[a])
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "call_module":
        return gm.get_submodule(node.target)(*args, **kwargs)
    if node.op == "get_attr":
        value = gm
        for part in node.target.split("."):
            value = getattr(value, part)
        return value
    raise TypeError(f"cannot split a graph at a {node.op} node")
