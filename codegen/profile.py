"""Where a compiled graph's time goes (`KILN_PROFILE=1`, `kiln profile SCRIPT.py`).

A profiled wrapper times each of its steps (a generated kernel, a library call, a matmul) and the
whole call; the report lists steps by total time with their calls, loop sizes, the bytes of the
buffers they touch, the bandwidth that gives and its fraction of the machine's copy bandwidth (the
memory roofline; compute-bound steps such as matmuls sit low on it by nature), then per graph the
wrapper's own time per call (the whole call less its steps: allocation, argument passing, Python).
Timing adds about a microsecond per step; steps are timed on the CPU clock, so on a GPU they
include only the launch unless the kernel synchronises.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch


@dataclass
class StepStats:
    label: str          # kernel name, or the op a library call runs
    kind: str           # "kernel" | "matmul" | "library"
    detail: str         # loop sizes, or argument shapes
    nbytes: int         # bytes of the buffers the step reads and writes (each once)
    calls: int = 0
    seconds: float = 0.0


@dataclass
class GraphProfile:
    name: str
    steps: list[StepStats] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    def add_step(self, label: str, kind: str, detail: str, nbytes: int) -> int:
        self.steps.append(StepStats(label, kind, detail, nbytes))
        return len(self.steps) - 1

    def record(self, index: int, seconds: float) -> None:
        step = self.steps[index]
        step.calls += 1
        step.seconds += seconds

    def timed(self, call):
        """`call`, with the whole call's time recorded."""
        clock = time.perf_counter

        def run(*args):
            start = clock()
            try:
                return call(*args)
            finally:
                self.calls += 1
                self.seconds += clock() - start

        return run


_lock = threading.Lock()
PROFILES: list[GraphProfile] = []


def new_graph_profile(name: str) -> GraphProfile:
    with _lock:
        profile = GraphProfile(f"graph {len(PROFILES)}" + (f" ({name})" if name else ""))
        PROFILES.append(profile)
    return profile


def clear() -> None:
    with _lock:
        PROFILES.clear()


_BANDWIDTH: list[float] = []


def copy_bandwidth() -> float:
    """Bytes per second a large tensor copy moves (read + write) on this machine, measured once."""
    if not _BANDWIDTH:
        src = torch.empty(16 * 2**20, dtype=torch.float32).fill_(1.0)  # 64 MiB: past the caches
        dst = torch.empty_like(src)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - start)
        _BANDWIDTH.append(2 * src.numel() * src.element_size() / best)
    return _BANDWIDTH[0]


def report(limit: int = 30) -> str:
    """The profile of every graph built with profiling on, as text."""
    with _lock:
        profiles = [p for p in PROFILES if p.calls]
    if not profiles:
        return "kiln profile: no profiled graph was called"
    bandwidth = copy_bandwidth()
    steps = sorted(((p, s) for p in profiles for s in p.steps if s.calls), key=lambda ps: -ps[1].seconds)
    total = sum(p.seconds for p in profiles)
    lines = [f"kiln profile: {len(profiles)} graph(s), {total * 1e3:.2f} ms in compiled calls; "
             f"copy bandwidth {bandwidth / 1e9:.1f} GB/s",
             f"{'total ms':>9} {'calls':>6} {'us/call':>9} {'GB/s':>7} {'roofline':>8}  step"]
    for p, s in steps[:limit]:
        per_call = s.seconds / s.calls
        rate = s.nbytes / per_call if per_call > 0 else 0.0
        lines.append(f"{s.seconds * 1e3:9.3f} {s.calls:6d} {per_call * 1e6:9.1f} {rate / 1e9:7.2f} "
                     f"{rate / bandwidth:8.2f}  {p.name}: {s.label} [{s.kind}] {s.detail}, {_size(s.nbytes)}")
    if len(steps) > limit:
        lines.append(f"  ... {len(steps) - limit} more step(s)")
    lines.append("per graph: calls, ms per call, steps' share, wrapper's own us per call")
    for p in profiles:
        in_steps = sum(s.seconds for s in p.steps)
        own = max(p.seconds - in_steps, 0.0) / p.calls
        lines.append(f"  {p.name}: {p.calls} calls, {p.seconds / p.calls * 1e3:.3f} ms, "
                     f"steps {in_steps / p.seconds:.0%}, wrapper {own * 1e6:.1f} us")
    return "\n".join(lines)


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes} B"
