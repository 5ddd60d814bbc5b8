"""Graphs with symbolic sizes, compiled once per concrete size: the fallback of kiln/dynamic.py.

TorchDynamo hands a backend graphs whose sizes are symbols (SymInt/SymFloat/SymBool placeholders,
tensors of symbolic shape) after a recompile caused by a size change (automatic dynamic shapes),
under `dynamic=True`, or after `mark_dynamic`. kiln/dynamic.py compiles them once for every size;
where a decision needs a concrete size (NotConcrete), the graph is compiled for each set of concrete
sizes it is called with instead: the symbols' values become
constants of a static graph, compiled like any other (inference or training, split or not), and
the build is cached by those values, at most `config.recompile_limit` versions per graph; past that
the graph runs eagerly, with one warning. The first version is built at compile time, from the
symbols' hints (the example inputs' sizes), so what cannot compile is known then.

What keys a version: the symbolic inputs' values, and the shape, strides, offset, dtype, device and
requires_grad of each tensor input whose shape or strides are symbolic (TorchDynamo guards the
others); without TorchDynamo's metadata, every tensor input.
"""
from __future__ import annotations

import threading
from typing import Callable

import torch
import torch.fx as fx

from . import config
from .fallback import EagerGraph, warn
from .split import value_key

SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)


def has_symbolic_inputs(example_inputs) -> bool:
    return any(isinstance(x, SYMBOLIC) for x in example_inputs)


def hint(x):
    """The concrete value TorchDynamo traced a symbol with."""
    if not isinstance(x, SYMBOLIC):
        return x
    value = x.node.hint
    if value is None:  # an unbacked symbol (a size read from tensor data): no value to specialise to
        raise ValueError(f"symbolic input {x} has no value to compile with")
    return value


def specialize(gm: fx.GraphModule, positions: list[int], values) -> fx.GraphModule:
    """gm with the placeholders at `positions` replaced by the constants `values`."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    constants = {placeholders[i]: v for i, v in zip(positions, values)}
    g = fx.Graph()
    env = {}
    for n in gm.graph.nodes:
        env[n] = constants[n] if n in constants else g.node_copy(n, lambda a: env[a])
    return fx.GraphModule(gm, g)


class SizeVersions:
    """The callable for a graph of symbolic sizes: one compiled version per concrete size."""

    def __init__(self, gm: fx.GraphModule, example_inputs, compile_static: Callable):
        self.gm = gm
        self.compile_static = compile_static  # (static gm, tensor inputs) -> callable
        self.symbols = [i for i, x in enumerate(example_inputs) if isinstance(x, SYMBOLIC)]
        self.tensors = [i for i, x in enumerate(example_inputs) if not isinstance(x, SYMBOLIC)]
        self.keyed = _symbolic_tensors(gm, example_inputs)
        self.versions: dict[tuple, Callable] = {}
        self.lock = threading.Lock()
        self.eager = None  # the whole graph eagerly, past the version limit
        self.warned = False
        inputs = [hint(x) for x in example_inputs]
        self.versions[self._key(inputs)] = self._compile(inputs)

    def _key(self, inputs) -> tuple:
        return (tuple((type(inputs[i]).__name__, repr(inputs[i])) for i in self.symbols)
                + tuple(value_key(inputs[i]) for i in self.keyed))

    def _compile(self, inputs) -> Callable:
        static = specialize(self.gm, self.symbols, [inputs[i] for i in self.symbols])
        return self.compile_static(static, [inputs[i] for i in self.tensors])

    def __call__(self, *inputs):
        key = self._key(inputs)
        call = self.versions.get(key)
        if call is None:
            with self.lock:
                call = self.versions.get(key) or self._new_version(key, inputs)
        if call is _EAGER:
            return self.eager(*inputs)
        return call(*[inputs[i] for i in self.tensors])

    def _new_version(self, key, inputs):
        if len(self.versions) >= config.recompile_limit:
            if not self.warned:
                self.warned = True
                warn(f"a graph with symbolic sizes was called with more than {config.recompile_limit} sizes; "
                     "it could not be compiled for every size at once (KILN_LOGS=dynamic says why), so Kiln "
                     "compiles one version per size, and other sizes run eagerly")
            self.eager = self.eager or EagerGraph(self.gm)
            return _EAGER
        self.versions[key] = call = self._compile(list(inputs))
        return call


_EAGER = object()


def _symbolic_tensors(gm, example_inputs) -> list[int]:
    """Tensor inputs whose shape or strides are symbolic in TorchDynamo's metadata (all of them
    when a placeholder has none)."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    keyed = []
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            continue
        meta = placeholders[i].meta.get("example_value") if i < len(placeholders) else None
        if not isinstance(meta, torch.Tensor) or any(isinstance(s, SYMBOLIC)
                                                      for s in (*meta.shape, *meta.stride(),
                                                                meta.storage_offset())):
            keyed.append(i)
    return keyed
