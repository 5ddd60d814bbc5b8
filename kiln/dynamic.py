"""Graphs of symbolic sizes compiled once, for every size: size-generic kernels.

TorchDynamo (or Kiln's capture) hands the back end a graph whose sizes are symbols after a
recompile caused by a size change, under `dynamic=True`, or after `mark_dynamic`. The graph is
traced over its placeholders' symbolic fake tensors (prims/aten_trace.py), so every size in the
prims graph, the loop IR and the kernels is a polynomial in the size symbols (prims/symbolic.py):
kernels take the symbols as arguments, the wrapper reads them from the inputs' sizes and the size
inputs, and one build serves every size. Choices that only cost speed (threads, loop order, buffer
reuse by size) are made at the example sizes; choices a kernel's result depends on are made only
where they hold for every size, else the compile raises NotConcrete.

A decision the trace makes on a size (a decomposition that branches on `size == 1`) is a guard in
the front end's ShapeEnv, which the front end checks before each call, as it does for Inductor.
Whatever cannot compile size-generically (a non-polynomial size) compiles per concrete size instead (kiln/sizes.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kiln import inductor, prims
from kiln.prims.aten_trace import VALUE_GUARDS_KEY
from kiln.prims.symbolic import (SYMBOL_PREFIX, NotConcrete, bare_symbol, derived_sizes, from_sym, hints_scope,
                                 symbol_hints, symbol_lower_bounds, to_sympy)

from . import training
from .build import build_kernels, trace_to_prims
from .dump import GraphDump
from .logs import get_logger

log = get_logger("dynamic")


def shape_env_of(example_inputs):
    for x in example_inputs:
        if isinstance(x, torch.SymInt) and x.node.shape_env is not None:
            return x.node.shape_env
    raise NotConcrete("no ShapeEnv among the symbolic inputs")


@dataclass(frozen=True)
class SizeInputs:
    """Where a graph's size inputs and tensors are among its inputs, and how each symbol is read."""
    positions: tuple           # the size inputs passed on to the kernels' wrappers (one per symbol)
    names: tuple               # their symbols (ks77)
    tensor_positions: tuple
    tensor_examples: list      # the tensor placeholders' symbolic fake tensors
    sources: tuple             # (symbol, "size" | "stride", tensor index, dim): the rest of the symbols
    count: int                 # inputs in all
    derived: list = field(default_factory=list, compare=False)  # DerivedSizes (kd0), once compiled

    @staticmethod
    def of(gm, example_inputs) -> "SizeInputs":
        positions, names = [], []
        for i, x in enumerate(example_inputs):
            if isinstance(x, torch.SymInt):
                e = from_sym(x)
                if bare_symbol(e) is not None and repr(e) not in names:  # a symbol passed twice is read once
                    positions.append(i)
                    names.append(repr(e))
        tensor_pos = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.Tensor)]
        if len(tensor_pos) + sum(isinstance(x, torch.SymInt) for x in example_inputs) != len(example_inputs):
            raise NotConcrete("inputs other than tensors and SymInts")
        fakes = [n.meta["example_value"] for n in gm.graph.nodes if n.op == "placeholder"]
        tensors = [fakes[i] for i in tensor_pos]
        sources, known = [], set(names)
        for k, t in enumerate(tensors):
            m = prims.TensorMeta.of(t)
            for what, values in (("size", m.shape), ("stride", m.strides)):
                for d, v in enumerate(values):
                    if bare_symbol(v) is not None and repr(v) not in known:
                        known.add(repr(v))
                        sources.append((repr(v), what, k, d))
        return SizeInputs(tuple(positions), tuple(names), tuple(tensor_pos), tensors, tuple(sources),
                          len(example_inputs))

    def values(self, tensors, sizes) -> dict:
        """{symbol: value} for one call: its tensors (in placeholder order) and size inputs."""
        env = dict(zip(self.names, sizes))
        for name, what, k, d in self.sources:
            env[name] = tensors[k].size(d) if what == "size" else tensors[k].stride(d)
        for size in self.derived:
            env.setdefault(size.name, size.value(env))
        return env

    def full_inputs(self, tensors, sizes) -> list:
        """The graph's own inputs again, size inputs included (an eager rerun of the graph)."""
        out = [None] * self.count
        for i, t in zip(self.tensor_positions, tensors):
            out[i] = t
        for i, v in zip(self.positions, sizes):
            out[i] = v
        return out


def compile_dynamic(gm, example_inputs, target: str, eager):
    """(call(*inputs), record) for a graph of symbolic sizes, or NotConcrete. The record is
    (Kernels, functional ATen graph, prims graph) for inference, a CompiledTraining for training."""
    shape_env = shape_env_of(example_inputs)
    guards_before = len(shape_env.guards)
    with hints_scope(symbol_hints(shape_env), symbol_lower_bounds(shape_env), guard_sink(shape_env)):
        sizes = SizeInputs.of(gm, example_inputs)
        if prims.needs_joint(gm, sizes.tensor_examples):
            compiled = training.compile_training(gm, example_inputs, target=target, eager=eager, sizes=sizes)
            call, record, traced = compiled.call, compiled, compiled.joint.gm
        else:
            call, record = _compile_inference(gm, example_inputs, target, eager, sizes)
            traced = record[1]
        sizes.derived.extend(derived_sizes())  # for the metas a training backward evaluates per call
    value_guards = traced.meta.get(VALUE_GUARDS_KEY, ())
    added = [str(g.expr) for g in shape_env.guards[guards_before:]]
    if added:
        log.debug("size guards the back end added (the front end checks them): %s", ", ".join(added))
    return call, record, value_guards


def guard_sink(shape_env):
    """`decide(diff, relation)`: `diff <relation> 0` at the example sizes, recorded as a guard in the
    front end's ShapeEnv (which checks its guards before each call), for decisions no proof over
    every size settles (prims/symbolic.py `guarded`)."""
    import sympy

    symbols = {SYMBOL_PREFIX + str(s): s for s in shape_env.var_to_range}
    relations = {">": sympy.Gt, ">=": sympy.Ge, "==": sympy.Eq}

    def decide(diff, relation: str) -> bool:
        return bool(shape_env.evaluate_expr(relations[relation](to_sympy(diff, symbols), 0)))

    return decide


def value_checked(call, guards, otherwise):
    """`call` while the one-element inputs hold the values the graph was traced with (a module's
    float attribute that TorchDynamo passes as a tensor under dynamic=True); `otherwise()` (built
    once, on the first miss) for other values."""
    if not guards:
        return call
    guards = tuple(dict(guards).items())  # read twice in one graph: one check
    fallback = []

    def checked(*inputs):
        for i, v in guards:
            w = inputs[i].item()
            if w != v and not (w != w and v != v):
                if not fallback:
                    fallback.append(otherwise())
                return fallback[0](*inputs)
        return call(*inputs)

    return checked


def _in_graph_order(run, sizes: SizeInputs):
    """`run` (the graph run eagerly, which raises eager's error for an index out of range or a zero
    divisor a kernel met) called with the wrapper's inputs: tensors first, then sizes, put back in
    the graph's own order."""
    count = len(sizes.tensor_positions)
    return lambda *inputs: run(*sizes.full_inputs(inputs[:count], inputs[count:]))


def _compile_inference(gm, example_inputs, target, eager, sizes: SizeInputs):
    dump = GraphDump()
    traced_gm, aten_gm, prims_gm = trace_to_prims(gm, example_inputs, target, dump)
    kernels = build_kernels(prims_gm, sizes.tensor_examples, target, dump, inductor.eager_peak_bytes(traced_gm),
                            on_index_error=_in_graph_order(eager.flat, sizes), size_inputs=sizes.names)
    flat = kernels.call
    tensor_pos, size_pos = sizes.tensor_positions, sizes.positions

    def call(*inputs):
        return flat(*[inputs[i] for i in tensor_pos], *[inputs[i] for i in size_pos])

    return call, (kernels, aten_gm, prims_gm)
