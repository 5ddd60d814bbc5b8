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
Whatever cannot compile size-generically (a non-polynomial size, a training graph, the Triton
target) compiles per concrete size instead (kiln/sizes.py).
"""
from __future__ import annotations

import torch

from kiln import inductor, prims
from kiln.prims.symbolic import NotConcrete, SizeExpr, from_sym, hints_scope, symbol_hints, symbol_lower_bounds

from .build import build_kernels, to_prims, with_io
from .dump import GraphDump
from .logs import get_logger, stage

log = get_logger("dynamic")


def shape_env_of(example_inputs):
    for x in example_inputs:
        if isinstance(x, torch.SymInt) and x.node.shape_env is not None:
            return x.node.shape_env
    raise NotConcrete("no ShapeEnv among the symbolic inputs")


def compile_dynamic(gm, example_inputs, target: str, eager):
    """(flat call(*inputs), CompiledGraph-like record) for a graph of symbolic sizes, or NotConcrete."""
    if target != "cpp":
        raise NotConcrete("size-generic kernels are C++ only for now")
    if prims.needs_joint(gm, [x for x in example_inputs if isinstance(x, torch.Tensor)]):
        raise NotConcrete("training graphs compile per size for now")
    shape_env = shape_env_of(example_inputs)
    hints = symbol_hints(shape_env)
    guards_before = len(shape_env.guards)
    size_pos, size_names = [], []
    for i, x in enumerate(example_inputs):
        if isinstance(x, torch.SymInt):
            e = from_sym(x)
            if isinstance(e, SizeExpr) and len(e.terms) == 1 and e.terms[0] == ((next(iter(e.symbols())),), 1):
                size_pos.append(i)
                size_names.append(repr(e))
    tensor_pos = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.Tensor)]
    if len(tensor_pos) + sum(isinstance(x, torch.SymInt) for x in example_inputs) != len(example_inputs):
        raise NotConcrete("inputs other than tensors and SymInts")
    dump = GraphDump()
    dump.write("0_captured_graph.py", lambda: gm.print_readable(print_output=False))
    with hints_scope(hints, symbol_lower_bounds(shape_env)):
        with stage("trace_aten"):
            traced_gm = prims.trace_aten(gm, example_inputs)
        dump.write("1_aten_graph.py", lambda: traced_gm.print_readable(print_output=False))
        with stage("functionalize"):
            aten_gm = prims.functionalize(traced_gm)
        dump.write("1_aten_functional.py", lambda: with_io(aten_gm))
        prims_gm = to_prims(aten_gm, target, dump)
        fakes = [n.meta["example_value"] for n in gm.graph.nodes if n.op == "placeholder"]
        kernels = build_kernels(prims_gm, [fakes[i] for i in tensor_pos], target, dump,
                                inductor.eager_peak_bytes(traced_gm), on_index_error=eager.flat,
                                size_inputs=size_names)
    added = [str(g.expr) for g in shape_env.guards[guards_before:]]
    if added:
        log.debug("size guards the back end added (the front end checks them): %s", ", ".join(added))
    flat = kernels.call

    def call(*inputs):
        return flat(*[inputs[i] for i in tensor_pos], *[inputs[i] for i in size_pos])

    return call, kernels, aten_gm, prims_gm
