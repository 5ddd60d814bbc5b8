"""Cost of Kiln's graph-break code generation (capture/bytecode), torch-free.

Usage (from the repository root):

    python bench/bytecode_gen.py             # about 10 s; prints a markdown table

What is measured (one process, methods interleaved round by round, median over rounds):
  1. Generating a resume function (uncached: caches cleared before each build) for a
     40-line function with a loop, a try block and a with block, at an offset inside the loop:
     decode + copy + prologue + bytecode assembly + our verification.
  2. Generating a break entry for a call inside a `with` block (graph stand-in, 3 stack
     items, 3 locals), including its resume function.
  3. Per-call cost of running through a break entry vs calling the original function: the
     entry calls the graph stand-in, re-enters the with block around the native call, exits it
     and calls the (uncompiled) resume function, which finishes the original code.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

sys.path[:0] = ["."]

from kiln.capture.bytecode import decode, emit  # noqa: E402
from kiln.capture.bytecode.break_entry import BreakPlan, build_break_entry  # noqa: E402
from kiln.capture.bytecode.layout import Constant, GraphOutput, Local, Null, SlotKind, WithExit  # noqa: E402
from kiln.capture.bytecode.resume import clear_cache, facts_of, resume_code, resume_points  # noqa: E402


class SetFlag:
    """A context manager like torch.no_grad(): a global mode set on entry, restored on exit."""
    mode = [False]

    def __enter__(self):
        self.previous, self.mode[0] = self.mode[0], True
        return self

    def __exit__(self, *exc_info):
        self.mode[0] = self.previous
        return False


def sink(value):
    return value


def medium(xs, scale):
    total, seen = 0, []
    for index, x in enumerate(xs):
        try:
            value = x * scale + index
        except TypeError:
            value = 0
        if value % 3 == 0:
            seen.append(value)
        total = total + value
    with SetFlag():
        label = f"{total}:{len(seen)}"
        sink(label)
        result = [total, seen, label]
    return result


def small(x):
    y = x + 1
    with SetFlag():
        sink(y)
        z = y * 2
    return z


def _loop_offset() -> tuple[int, int]:
    facts = facts_of(medium.__code__)
    points = [o for o in resume_points(medium.__code__) if facts.stack.depth_at(o) == 1]
    return points[len(points) // 2], 1


def _sink_plan() -> BreakPlan:
    instructions = decode(small).instructions
    start = next(n for n, i in enumerate(instructions) if i.opname == "LOAD_GLOBAL" and i.argval == "sink")
    call = next(i for i in instructions[start:] if i.opname == "CALL")
    slots = [Constant(sink), Null()] if emit.NULL_AFTER_CALLABLE else [Null(), Constant(sink)]
    return BreakPlan(small.__code__, call.offset, ("x",),
                     (WithExit(Constant(SetFlag())), *slots, GraphOutput(0)),
                     (("x", Local("x")), ("y", GraphOutput(0))),
                     graph=lambda x: (x + 1,), graph_inputs=(Local("x"),))


def bench_resume_build(rounds: int, builds: int) -> float:
    offset, depth = _loop_offset()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(builds):
            clear_cache()
            resume_code(medium.__code__, offset, (SlotKind.VALUE,) * depth, medium.__code__.co_varnames)
        times.append((time.perf_counter() - start) / builds)
    return statistics.median(times)


def bench_entry_build(rounds: int, builds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(builds):
            clear_cache()
            build_break_entry(_sink_plan(), small.__globals__)
        times.append((time.perf_counter() - start) / builds)
    return statistics.median(times)


def bench_calls(rounds: int, calls: int) -> tuple[float, float]:
    entry = build_break_entry(_sink_plan(), small.__globals__)
    assert entry(3) == small(3)
    eager, through = [], []
    for _ in range(rounds):
        for method, store in ((small, eager), (entry.function, through)):
            start = time.perf_counter()
            for _ in range(calls):
                method(3)
            store.append((time.perf_counter() - start) / calls)
    return statistics.median(eager), statistics.median(through)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    resume_ms = bench_resume_build(args.rounds, 40) * 1e3
    entry_ms = bench_entry_build(args.rounds, 40) * 1e3
    eager_us, entry_us = (t * 1e6 for t in bench_calls(args.rounds, 20000))
    print(f"## Graph-break code generation (`python bench/bytecode_gen.py`)\n\nPython {sys.version.split()[0]}\n")
    print("| what | median |\n|---|--:|")
    print(f"| build a resume function (40-line function, offset in a loop, uncached) | {resume_ms:.2f} ms |")
    print(f"| build a break entry + its resume function (call inside a with block) | {entry_ms:.2f} ms |")
    print(f"| call the original function (eager) | {eager_us:.2f} µs |")
    print(f"| call through the break entry (graph stand-in, with re-entry, resume function) | {entry_us:.2f} µs |")
    print(f"| break overhead per call | {entry_us - eager_us:.2f} µs |")
    print(f"\nMedian over {args.rounds} interleaved rounds (40 builds / 20000 calls per round).")


if __name__ == "__main__":
    main()
