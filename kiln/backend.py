"""The `kiln` backend: a torch-level fx graph and example inputs in, a callable out.

    captured graph -> ATen graph -> functional ATen graph -> prims graph     (kiln.prims)
    -> loop-IR buffers -> fused schedule + memory plan                       (kiln.inductor)
    -> C++ (or Triton) kernels + a generated Python wrapper                  (kiln.codegen)

This is the one module that runs all the back-end stages in order; each stage also runs alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_unflatten

from kiln import inductor, prims
from kiln.codegen.wrapper import build_wrapper

from . import config, records, split, training
from .dump import GraphDump
from .fallback import KilnCompileWarning  # noqa: F401  (re-exported: kiln.backend.KilnCompileWarning)
from .fallback import EagerGraph, eager_first, guarded_call, warn
from .input_storage import storage_check
from .logs import get_logger

log_code = get_logger("output_code")
log_schedule = get_logger("schedule")
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


def compile_fx(gm: fx.GraphModule, example_inputs, *, target=None):
    """The backend: returns a callable with gm's outputs. Whatever Kiln cannot do, at compile time or
    when called, ends in gm run eagerly (kiln/fallback.py) with one warning; no internal error
    reaches the caller (`config.strict` raises them instead)."""
    example_inputs = list(example_inputs)
    eager = EagerGraph(gm)
    try:
        try:
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


def _may_be_the_programs_error(e: Exception) -> bool:
    """Errors that checking the program raised (a prim's shape/dtype rule, an op run on fake
    tensors), as opposed to something Kiln cannot do yet: eager decides whose error it is."""
    return isinstance(e, (prims.PrimMetaError, prims.FakeRunError))


def compile_graph(gm: fx.GraphModule, example_inputs, *, target=None, eager: EagerGraph | None = None) -> CompiledGraph:
    """An inference graph compiled (a graph that needs a backward goes to kiln/training.py)."""
    start = time.perf_counter()
    target = pick_target(target, example_inputs)
    dump = GraphDump()
    dump.write("0_captured_graph.py", lambda: gm.print_readable(print_output=False))
    traced_gm = prims.trace_aten(gm, example_inputs)
    dump.write("1_aten_graph.py", lambda: traced_gm.print_readable(print_output=False))
    aten_gm = prims.functionalize(traced_gm)
    dump.write("1_aten_functional.py", lambda: _with_io(aten_gm))
    prims_gm = to_prims(aten_gm, target, dump)
    kernels = build_kernels(prims_gm, example_inputs, target, dump, inductor.eager_peak_bytes(traced_gm),
                            on_index_error=(eager or EagerGraph(gm)).flat)
    call = _restore_structure(kernels.call, aten_gm.meta["out_spec"], len(kernels.graph.outputs))
    return CompiledGraph(call=call, target=target, traced_gm=traced_gm, aten_gm=aten_gm, prims_gm=prims_gm,
                         graph=kernels.graph, schedule=kernels.schedule, backend=kernels.backend,
                         wrapper_source=kernels.wrapper_source, dump_dir=dump.dir,
                         compile_s=time.perf_counter() - start)


def to_prims(aten_gm: fx.GraphModule, target: str, dump: GraphDump) -> fx.GraphModule:
    """A functional ATen graph decomposed for `target`, its op-level fallbacks reported."""
    prims_gm = prims.decompose(aten_gm, renderable=renderable_dtypes(target), target=TARGET_NAMES[target])
    dump.write("2_prims_graph.py", lambda: _with_io(prims_gm))
    _report_op_fallbacks(prims_gm, dump)
    return prims_gm


@dataclass(frozen=True)
class Kernels:
    """One prims graph lowered, scheduled and generated: `call(*inputs)` returns its flat outputs."""
    call: Callable
    graph: inductor.GraphLowering
    schedule: inductor.Schedule
    backend: Any
    wrapper_source: str


def build_kernels(prims_gm, example_inputs, target: str, dump: GraphDump, eager_peak: int, *, on_index_error,
                  prefix: str = "") -> Kernels:
    """prims graph -> loop IR -> fused schedule + memory plan -> kernels + wrapper. `prefix` names
    this graph's dump files apart from another's of the same compile (a forward's, a backward's)."""
    graph = inductor.lower(prims_gm, example_inputs)
    dump.write(f"{prefix}3_loop_ir.txt", repr(graph))
    schedule = inductor.schedule(graph, eager_peak, scratch=target == "cpp")
    dump.write(f"{prefix}4_schedule.txt", schedule.text)
    log_schedule.debug("%s", schedule.text)
    backend = _make_backend(target, schedule.kernels, graph.buffers)
    call, wrapper_source = build_wrapper(graph, schedule.steps, backend, on_index_error=on_index_error)
    for fname, src in backend.sources().items():
        dump.write(f"{prefix}5_{fname}", src)
    dump.write(f"{prefix}6_wrapper.py", wrapper_source)
    log_code.debug("kernels:\n%s\nwrapper:\n%s", "\n".join(backend.sources().values()), wrapper_source)
    return Kernels(call, graph, schedule, backend, wrapper_source)


class OpFallbackError(RuntimeError):
    """KILN_STRICT=ops: an ATen op would run as is inside a compiled graph."""


def _report_op_fallbacks(prims_gm, dump) -> None:
    """Each ATen op the graph runs as is: logged, dumped, and an error under KILN_STRICT=ops."""
    nodes = prims.fallback_nodes(prims_gm)
    if not nodes:
        return
    lines = [f"{n.name}: {n.args[0]}: {prims.fallback_reason(n)}" for n in nodes]
    dump.write("2_fallbacks.txt", "\n".join(lines))
    for line in lines:
        log_fallbacks.debug("%s", line)
    if config.strict == "ops":
        raise OpFallbackError("KILN_STRICT=ops: ATen op(s) would run as is inside the compiled graph: "
                              + "; ".join(map(str, records.op_fallbacks(prims_gm))))


TARGET_NAMES = {"cpp": "C++", "triton": "Triton"}


def renderable_dtypes(target: str) -> frozenset:
    """The dtypes `target`'s kernels compute in (its type table); ops in others run as is."""
    if target == "cpp":
        from kiln.codegen.cpp.ops import CTYPES

        return frozenset(CTYPES)
    from kiln.codegen.triton.ops import TL_DTYPES  # the table only: triton itself is not imported

    return frozenset(TL_DTYPES)


def _with_io(gm) -> str:
    """The graph's code, then what its outputs mean to the caller (aliasing, input copy-backs)."""
    return gm.print_readable(print_output=False) + "\n" + prims.describe(gm)


def _make_backend(target, kernels, buffers):
    if target == "cpp":
        from kiln.codegen.cpp import CppBackend

        return CppBackend(kernels)
    from kiln.codegen.triton import TritonBackend  # imports triton: only when asked for

    return TritonBackend(kernels, buffers)


def _restore_structure(call, spec, n):
    """The wrapper returns a flat tuple; give back gm's own output structure."""
    if spec == tree_flatten(tuple(range(n)))[1]:
        return call
    return lambda *args: tree_unflatten(list(call(*args)), spec)
