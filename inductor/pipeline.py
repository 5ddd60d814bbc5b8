"""inductor's two steps: a prims graph -> loop-IR buffers (`lower`), buffers -> a fused schedule
and a memory plan (`schedule`)."""
from __future__ import annotations

from dataclasses import dataclass

from .attention import fuse_attention
from .graph import GraphLowering
from .ir.schedule import FusedKernel
from .memory import peak_bytes, plan_memory
from .scheduler import FUSION_WINDOW, Scheduler


def lower(prims_gm, example_inputs) -> GraphLowering:
    """Every prim lowered to loop IR; attention patterns become one SDPA call."""
    graph = GraphLowering(prims_gm, example_inputs).run()
    fuse_attention(graph)
    return graph


@dataclass(frozen=True)
class Schedule:
    items: list            # FusedKernel | ExternBuffer, in run order
    steps: list            # Alloc / Run / Free, what the wrapper does
    not_fused: list        # readable reasons
    memory_note: str       # planned peak against eager's
    text: str              # the schedule and memory plan as `kiln dump` prints them

    @property
    def kernels(self) -> list[FusedKernel]:
        return [i for i in self.items if isinstance(i, FusedKernel)]

    def __repr__(self) -> str:
        return self.text


def schedule(graph: GraphLowering, eager_peak: int, *, scratch: bool) -> Schedule:
    """Fused schedule and memory plan. Fusion can keep buffers alive longer (a buffer fused into an
    earlier kernel is allocated earlier; independent buffers fused together are all live at once).
    If the planned peak is above eager's, schedule again fusing into the latest item only, then
    also only vertically, and keep the lowest peak."""
    outputs = graph.output_buffers()
    best = None
    for window, horizontal, why in ((FUSION_WINDOW, True, None), (1, True, "fusion window 1"),
                                    (1, False, "fusion window 1, no horizontal fusion")):
        fused = Scheduler(graph, scratch=scratch, window=window, horizontal=horizontal).run()
        steps = plan_memory(fused.items, outputs, graph.buffers)
        peak = peak_bytes(steps)
        if why is not None:
            fused.not_fused.append(f"{why}: the wider fusion peaked at {best[2]} bytes, above eager's {eager_peak}")
        if best is None or peak < best[2]:
            best = (fused, steps, peak)
        if best[2] <= eager_peak:
            break
    fused, steps, peak = best
    note = f"peak {peak} bytes, eager {eager_peak} bytes"
    text = repr(fused) + f"\n\nmemory plan ({note}):\n  " + "\n  ".join(map(repr, steps))
    return Schedule(items=fused.items, steps=steps, not_fused=fused.not_fused, memory_note=note, text=text)
