"""The back-end stages after tracing, shared by inference (kiln/backend.py) and training
(kiln/training.py): a functional ATen graph decomposed to prims for a target, and a prims graph
lowered, scheduled and generated into kernels and a wrapper."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.fx as fx

from kiln import inductor, prims
from kiln.codegen.wrapper import build_wrapper

from . import config, records
from .dump import GraphDump
from .logs import get_logger, stage

log_code = get_logger("output_code")
log_schedule = get_logger("schedule")
log_fallbacks = get_logger("op_fallbacks")


def to_prims(aten_gm: fx.GraphModule, target: str, dump: GraphDump) -> fx.GraphModule:
    """A functional ATen graph decomposed for `target`, its op-level fallbacks reported."""
    with stage("decompose"):
        prims_gm = prims.decompose(aten_gm, renderable=renderable_dtypes(target), target=TARGET_NAMES[target])
    dump.write("2_prims_graph.py", lambda: with_io(prims_gm))
    _report_op_fallbacks(prims_gm, dump)
    return prims_gm


def trace_to_prims(gm: fx.GraphModule, example_inputs, target: str, dump: GraphDump):
    """A torch-level graph traced to ATen, made functional and decomposed for `target`, each stage
    dumped: (traced ATen graph, functional ATen graph, prims graph)."""
    dump.write("0_captured_graph.py", lambda: gm.print_readable(print_output=False))
    with stage("trace_aten"):
        traced_gm = prims.trace_aten(gm, example_inputs)
    dump.write("1_aten_graph.py", lambda: traced_gm.print_readable(print_output=False))
    with stage("functionalize"):
        aten_gm = prims.functionalize(traced_gm)
    dump.write("1_aten_functional.py", lambda: with_io(aten_gm))
    return traced_gm, aten_gm, to_prims(aten_gm, target, dump)


@dataclass(frozen=True)
class Kernels:
    """One prims graph lowered, scheduled and generated: `call(*inputs)` returns its flat outputs."""
    call: Callable
    graph: inductor.GraphLowering
    schedule: inductor.Schedule
    backend: Any
    wrapper_source: str


def build_kernels(prims_gm, example_inputs, target: str, dump: GraphDump, eager_peak: int, *, on_index_error,
                  prefix: str = "", size_inputs=()) -> Kernels:
    """prims graph -> loop IR -> fused schedule + memory plan -> kernels + wrapper. `prefix` names
    this graph's dump files apart from another's of the same compile (a forward's, a backward's)."""
    with stage("lower"):
        graph = inductor.lower(prims_gm, example_inputs)
    graph.size_inputs = list(size_inputs)  # symbols given as trailing arguments (kiln/dynamic.py)
    dump.write(f"{prefix}3_loop_ir.txt", repr(graph))
    with stage("schedule"):
        schedule = inductor.schedule(graph, eager_peak, scratch=target == "cpp")
    dump.write(f"{prefix}4_schedule.txt", schedule.text)
    log_schedule.debug("%s", schedule.text)
    backend = _make_backend(target, schedule.kernels, graph.buffers)
    with stage("wrapper"):
        call, wrapper_source = build_wrapper(graph, schedule.steps, backend, on_index_error=on_index_error,
                                             profile_name=prefix.rstrip("_") if config.profile else None)
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


def with_io(gm) -> str:
    """The graph's code, then what its outputs mean to the caller (aliasing, input copy-backs)."""
    return gm.print_readable(print_output=False) + "\n" + prims.describe(gm)


def _make_backend(target, kernels, buffers):
    if target == "cpp":
        from kiln.codegen.cpp import CppBackend

        return CppBackend(kernels)
    from kiln.codegen.triton import TritonBackend  # imports triton: only when asked for

    return TritonBackend(kernels, buffers)
