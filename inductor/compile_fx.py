"""compile_fx: the `kiln` backend. Torch-level fx graph + example inputs in, a callable out.

    captured graph -> ATen graph -> prims graph -> loop IR buffers -> fused kernels + memory plan
    -> C++ (or Triton) kernels + a generated Python wrapper
"""
from __future__ import annotations

import os
import time
import warnings

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_unflatten

import prims
from prims.logs import artifact_logger

from .attention import fuse_attention
from .dump import GraphDump
from .graph import GraphLowering
from .memory import eager_peak_bytes, peak_bytes, plan_memory
from .scheduler import FUSION_WINDOW, FusedKernel, Scheduler

log_code = artifact_logger("output_code")
log_schedule = artifact_logger("schedule")


class KilnCompileWarning(UserWarning):
    """Kiln could not compile a graph and runs it eagerly."""


def _strict() -> bool:
    return os.environ.get("KILN_STRICT", "") not in ("", "0")


def _pick_target(target, example_inputs) -> str:
    target = target or os.environ.get("KILN_TARGET") or None  # `kiln dump --target` sets KILN_TARGET
    if target is not None:
        if target not in ("cpp", "triton"):
            raise ValueError(f"target must be 'cpp' or 'triton', got {target!r}")
        return target
    cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in example_inputs)
    return "triton" if cuda else "cpp"


def compile_fx(gm: fx.GraphModule, example_inputs, *, target=None):
    """The backend: returns a callable with gm's outputs; on any failure, gm itself (one warning)."""
    try:
        return compile_graph(gm, list(example_inputs), target=target).call
    except Exception as e:  # noqa: BLE001  (never let a compiler error reach user code)
        if _strict():
            raise
        warnings.warn(f"kiln: could not compile this graph ({type(e).__name__}: {e}); running it eagerly",
                      KilnCompileWarning, stacklevel=2)
        return gm.forward


class CompiledGraph:
    """Everything one compile produced; `call(*inputs)` runs it."""

    def __init__(self, **parts):
        self.__dict__.update(parts)

    def __repr__(self):
        return f"CompiledGraph(target={self.target}, kernels={len(self.kernels)}, compile_s={self.compile_s:.3f})"


def compile_graph(gm: fx.GraphModule, example_inputs, *, target=None) -> CompiledGraph:
    start = time.perf_counter()
    if torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs):
        raise prims.UnsupportedGraph("inputs require grad: Kiln compiles inference graphs only for now "
                                     "(run under torch.no_grad() or torch.inference_mode())")
    target = _pick_target(target, example_inputs)
    dump = GraphDump()
    dump.write("0_captured_graph.py", lambda: gm.print_readable(print_output=False))
    traced_gm = prims.trace_aten(gm, example_inputs)
    dump.write("1_aten_graph.py", lambda: traced_gm.print_readable(print_output=False))
    aten_gm = prims.functionalize(traced_gm)
    dump.write("1_aten_functional.py", lambda: _with_io(aten_gm))
    prims_gm = prims.decompose(aten_gm)
    dump.write("2_prims_graph.py", lambda: _with_io(prims_gm))
    fallbacks = [n for n in prims_gm.graph.nodes if n.op == "call_function" and n.target is prims.PRIMS["fallback"]]
    if fallbacks:
        dump.write("2_fallbacks.txt", "\n".join(f"{n.name}: {n.args[0]} has no decomposition" for n in fallbacks))
    graph = GraphLowering(prims_gm, example_inputs).run()
    fuse_attention(graph)
    dump.write("3_loop_ir.txt", repr(graph))
    outputs = graph.output_buffers()
    schedule, steps, memory_note = _schedule(graph, outputs, traced_gm, scratch=target == "cpp")
    schedule_text = repr(schedule) + f"\n\nmemory plan ({memory_note}):\n  " + "\n  ".join(map(repr, steps))
    dump.write("4_schedule.txt", schedule_text)
    log_schedule.debug("%s", schedule_text)
    kernels = [i for i in schedule.items if isinstance(i, FusedKernel)]
    backend = _make_backend(target, kernels, graph.buffers)
    from codegen.wrapper import build_wrapper

    call, wrapper_source = build_wrapper(graph, steps, backend, on_index_error=_eager_flat(gm))
    for fname, src in backend.sources().items():
        dump.write(f"5_{fname}", src)
    dump.write("6_wrapper.py", wrapper_source)
    log_code.debug("kernels:\n%s\nwrapper:\n%s", "\n".join(backend.sources().values()), wrapper_source)
    spec = aten_gm.meta["out_spec"]
    call = _restore_structure(call, spec, len(graph.outputs))
    return CompiledGraph(call=call, target=target, kernels=kernels, schedule=schedule, steps=steps, graph=graph,
                         traced_gm=traced_gm, aten_gm=aten_gm, prims_gm=prims_gm, backend=backend, wrapper_source=wrapper_source,
                         dump_dir=dump.dir, compile_s=time.perf_counter() - start)


def _schedule(graph, outputs, aten_gm, scratch):
    """Fused schedule and memory plan. Fusion can keep buffers alive longer (a buffer fused into an
    earlier kernel is allocated earlier; independent buffers fused together are all live at once).
    If the planned peak is above eager's, schedule again fusing into the latest item only, then
    also only vertically, and keep the lowest peak."""
    eager = eager_peak_bytes(aten_gm)
    best = None
    for window, horizontal, why in ((FUSION_WINDOW, True, None), (1, True, "fusion window 1"),
                                    (1, False, "fusion window 1, no horizontal fusion")):
        schedule = Scheduler(graph, scratch=scratch, window=window, horizontal=horizontal).run()
        steps = plan_memory(schedule.items, outputs, graph.buffers)
        peak = peak_bytes(steps)
        if why is not None:
            schedule.not_fused.append(f"{why}: the wider fusion peaked at {best[2]} bytes, above eager's {eager}")
        if best is None or peak < best[2]:
            best = (schedule, steps, peak)
        if best[2] <= eager:
            break
    schedule, steps, peak = best
    return schedule, steps, f"peak {peak} bytes, eager {eager} bytes"


def _with_io(gm) -> str:
    """The graph's code, then what its outputs mean to the caller (aliasing, input copy-backs)."""
    return gm.print_readable(print_output=False) + "\n" + prims.describe(gm)


def _make_backend(target, kernels, buffers):
    if target == "cpp":
        from codegen.cpp import CppBackend

        return CppBackend(kernels)
    from codegen.triton import TritonBackend

    return TritonBackend(kernels, buffers)


def _eager_flat(gm):
    """gm run eagerly, outputs flattened as the wrapper's: after a kernel met an out-of-range
    index, this raises eager's own IndexError/RuntimeError on the same inputs."""
    return lambda *inputs: tuple(tree_flatten(gm.forward(*inputs))[0])


def _restore_structure(call, spec, n):
    """The wrapper returns a flat tuple; give back gm's own output structure."""
    if spec == tree_flatten(tuple(range(n)))[1]:
        return call
    return lambda *args: tree_unflatten(list(call(*args)), spec)
