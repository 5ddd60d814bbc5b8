"""kiln.inductor: a prims graph -> loop-IR buffers -> fused kernels and a memory plan.

    graph = lower(prims_gm, example_inputs)                       # GraphLowering: buffers of loop IR
    plan = schedule(graph, eager_peak_bytes(aten_gm), scratch=True)  # Schedule: kernels, Alloc/Run/Free steps

What the schedule holds (FusedKernel, LoopGroup, KernelNode, Alloc/Run/Free) lives in
inductor.ir.schedule: codegen reads only inductor.ir.
"""
if __name__ != "kiln.inductor":  # one copy of each module, one set of registries
    raise ImportError(f"Kiln's inductor stage is imported as kiln.inductor, not {__name__}")
from .graph import GraphLowering
from .memory import eager_peak_bytes, peak_bytes
from .pipeline import Schedule, lower, schedule

__all__ = ["GraphLowering", "Schedule", "lower", "schedule", "eager_peak_bytes", "peak_bytes"]
