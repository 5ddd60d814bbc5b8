"""The `kiln` backend: a torch-level fx graph and example inputs in, a callable out.

    captured graph -> ATen graph -> functional ATen graph -> prims graph     (kiln.prims)
    -> loop-IR buffers -> fused schedule + memory plan                       (kiln.inductor)
    -> C++ (or Triton) kernels + a generated Python wrapper                  (kiln.codegen)

This is the one module that runs all the back-end stages in order; each stage also runs alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_unflatten

from kiln import inductor, prims

from . import compile_options, config, constants, dynamic, records, sizes, split, training
from .build import OpFallbackError, build_kernels, trace_to_prims
from .dump import GraphDump
from .fallback import KilnCompileWarning  # noqa: F401  (re-exported: kiln.backend.KilnCompileWarning)
from .fallback import EagerGraph, eager_first, guarded_call, warn
from .input_storage import storage_check
from .logs import get_logger, graph_stages

log_fallbacks = get_logger("op_fallbacks")


@dataclass(frozen=True)
class CompiledGraph:
    """Everything one compile produced; `call(*inputs)` runs it."""
    call: Callable
    target: str                          # "cpp" | "triton"
    traced_gm: fx.GraphModule            # ATen graph as traced (in-place ops included)
    aten_gm: fx.GraphModule              # functional ATen graph
    prims_gm: fx.GraphModule             # prims graph
    graph: inductor.GraphLowering        # loop-IR buffers
    schedule: inductor.Schedule          # fused kernels, memory plan
    backend: Any                         # CppBackend | TritonBackend: the built kernels
    wrapper_source: str
    dump_dir: Path | None
    compile_s: float

    @property
    def kernels(self) -> list:
        return self.schedule.kernels

    @property
    def steps(self) -> list:
        return self.schedule.steps

    def __repr__(self):
        return f"CompiledGraph(target={self.target}, kernels={len(self.kernels)}, compile_s={self.compile_s:.3f})"


def pick_target(target, example_inputs) -> str:
    target = target or config.target  # `kiln dump --target` sets KILN_TARGET
    if target is not None:
        if target not in ("cpp", "triton"):
            raise ValueError(f"target must be 'cpp' or 'triton', got {target!r}")
        return target
    cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in example_inputs)
    return "triton" if cuda else "cpp"


def compile_fx(gm: fx.GraphModule, example_inputs, *, target=None, mode=None, options=None):
    """The backend: returns a callable with gm's outputs. Whatever Kiln cannot do, at compile time or
    when called, ends in gm run eagerly (kiln/fallback.py) with one warning; no internal error
    reaches the caller (`config.strict` raises them instead). `mode` and `options` are what
    torch.compile passes (kiln/compile_options.py: `options={"target": "triton"}` is honoured)."""
    target = compile_options.resolve(target, mode, options)
    example_inputs = list(example_inputs)
    eager = EagerGraph(gm)
    function, location = records.origin(gm)
    with graph_stages(f"{function} ({location})"):
        return _compile_fx(gm, example_inputs, eager, target)


def _compile_fx(gm, example_inputs, eager, target):
    try:
        try:
            if sizes.has_symbolic_inputs(example_inputs):
                call = _compile_dynamic(gm, example_inputs, target, eager)  # one build for all sizes (kiln/dynamic.py)
                if call is not None:
                    return call
                # else one static build per concrete size (kiln/sizes.py)
                call = sizes.SizeVersions(gm, example_inputs, lambda g, inputs: compile_fx(g, inputs, target=target))
                records.add_backend_record(gm, per_size=True)
                return call
            if prims.needs_joint(gm, example_inputs):  # grad mode on, something requires grad: forward + backward
                compiled = training.compile_training(gm, example_inputs, target=pick_target(target, example_inputs),
                                                     eager=eager)
                records.add_backend_record(gm, compiled=compiled)
                return guarded_call(compiled.call, eager, storage_check(example_inputs, compiled.mutated_inputs))
            compiled = compile_graph(gm, example_inputs, target=target, eager=eager)
        except prims.DataDependentOp as e:
            if e.node is None:
                raise
            return _split(gm, e, example_inputs, target)
        except prims.WrittenConstants as e:
            lifted = constants.lift_written(gm, e.tensors)
            if lifted is None:
                raise
            return _with_constants(*lifted, example_inputs, target)
        records.add_backend_record(gm, compiled=compiled)
        return guarded_call(compiled.call, eager, _storage_check(compiled, example_inputs),
                            recompile=lambda inputs: _recompile(gm, inputs, target, eager))
    except Exception as e:  # noqa: BLE001  (never let a compiler error reach user code)
        records.add_backend_record(gm, error=e)
        what = f"{type(e).__name__}: {e}"
        if _may_be_the_programs_error(e):
            return eager_first(eager, e, what)
        if config.strict:
            raise
        warn(f"could not compile this graph ({what}); running it eagerly")
        return eager


def _compile_dynamic(gm, example_inputs, target, eager):
    """The size-generic build of a graph of symbolic sizes, or None where it cannot be one (then the
    reason is logged under KILN_LOGS=dynamic and the graph compiles per size)."""
    try:
        call, record, value_guards = dynamic.compile_dynamic(gm, example_inputs, pick_target(target, example_inputs),
                                                             eager)
    except Exception as e:  # noqa: BLE001  (whatever fails here gets its answer from the per-size path)
        if config.strict_dynamic:
            raise
        dynamic.log.debug("compiled per size, not size-generic: %s: %s", type(e).__name__, e)
        return None
    tensor_pos = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.Tensor)]
    if isinstance(record, training.CompiledTraining):
        records.add_backend_record(gm, compiled=record, dynamic=True)
        written = [tensor_pos[i] for i in record.mutated_inputs]
    else:
        kernels, aten_gm, prims_gm = record
        records.add_backend_record(gm, compiled=SimpleNamespace(kernels=kernels.schedule.kernels, prims_gm=prims_gm),
                                   dynamic=True)
        call = _restore_structure(call, aten_gm.meta["out_spec"], len(kernels.graph.outputs))
        written = [tensor_pos[i] for i, _ in kernels.graph.mutations]
    call = dynamic.value_checked(call, value_guards, lambda: sizes.SizeVersions(
        gm, example_inputs, lambda g, inputs: compile_fx(g, inputs, target=target)))
    return guarded_call(call, eager, storage_check(example_inputs, sorted(set(written))))


def _storage_check(compiled, inputs):
    return storage_check(inputs, sorted({index for index, _ in compiled.graph.mutations}))


def _recompile(gm, inputs, target, eager):
    """gm compiled again for inputs that share memory otherwise (a graph that writes an input
    computes on the memory sharing it was compiled for): (call, its storage check)."""
    compiled = compile_graph(gm, inputs, target=target, eager=eager)
    return compiled.call, _storage_check(compiled, inputs)


def _split(gm, error, example_inputs, target):
    """A data-dependent op: compile the graph around it, run it eagerly (kiln/split.py)."""
    node = next(n for n in gm.graph.nodes if n.name == error.node)
    fallback = records.OpFallback(split.op_name(node), split.SPLIT_REASON, 1)
    log_fallbacks.debug("%s: %s", node.name, fallback)
    if config.strict == "ops":
        raise OpFallbackError(f"KILN_STRICT=ops: {fallback}")
    call = split.split_at(gm, error.node, example_inputs, lambda part, inputs: compile_fx(part, inputs, target=target))
    records.add_backend_record(gm, split=fallback)
    return call


def _with_constants(lifted_gm, tensors, example_inputs, target):
    """gm with the constants it writes as trailing inputs (kiln/constants.py), called with them."""
    call = compile_fx(lifted_gm, [*example_inputs, *tensors], target=target)
    return lambda *inputs: call(*inputs, *tensors)


def _may_be_the_programs_error(e: Exception) -> bool:
    """Errors that checking the program raised (a prim's shape/dtype rule, an op run on fake
    tensors), as opposed to something Kiln cannot do yet: eager decides whose error it is."""
    return isinstance(e, (prims.PrimMetaError, prims.FakeRunError))


def compile_graph(gm: fx.GraphModule, example_inputs, *, target=None, eager: EagerGraph | None = None) -> CompiledGraph:
    """An inference graph compiled (a graph that needs a backward goes to kiln/training.py)."""
    start = time.perf_counter()
    if prims.needs_joint(gm, example_inputs):
        raise prims.UnsupportedGraph("inputs require grad: compile_graph compiles inference graphs; compile_fx "
                                     "compiles training graphs (kiln/training.py)")
    target = pick_target(target, example_inputs)
    dump = GraphDump()
    traced_gm, aten_gm, prims_gm = trace_to_prims(gm, example_inputs, target, dump)
    kernels = build_kernels(prims_gm, example_inputs, target, dump, inductor.eager_peak_bytes(traced_gm),
                            on_index_error=(eager or EagerGraph(gm)).flat)
    call = _restore_structure(kernels.call, aten_gm.meta["out_spec"], len(kernels.graph.outputs))
    return CompiledGraph(call=call, target=target, traced_gm=traced_gm, aten_gm=aten_gm, prims_gm=prims_gm,
                         graph=kernels.graph, schedule=kernels.schedule, backend=kernels.backend,
                         wrapper_source=kernels.wrapper_source, dump_dir=dump.dir,
                         compile_s=time.perf_counter() - start)


def _restore_structure(call, spec, n):
    """The wrapper returns a flat tuple; give back gm's own output structure."""
    if spec == tree_flatten(tuple(range(n)))[1]:
        return call
    return lambda *args: tree_unflatten(list(call(*args)), spec)
