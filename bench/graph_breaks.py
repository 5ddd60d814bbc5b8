"""Graph-break cost: Kiln's capture vs TorchDynamo, both with the "eager" backend.

Usage (from the repository root, in the virtualenv):

    python bench/graph_breaks.py            # about half a minute
    python bench/graph_breaks.py --quick    # smoke test

What is measured (one process, under torch.no_grad(), methods interleaved round by round, a
1x8 tensor so the numbers are all overhead):
  1. Per-call time of an already-compiled function with one graph break (a call to an
     untraceable no-op between two tensor ops): plain eager | capture.compile | torch.compile,
     and the same function without the break for reference. The median over rounds of the
     time per call is shown.
  2. First-call time (capture of both pieces, code generation, running it once) of fresh
     copies of the function with the break, after capture.reset() / torch._dynamo.reset().
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("KILN_STRICT", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from kiln import capture  # noqa: E402

SOURCE = '''
def with_break(x):
    y = x.sin() + 1
    noop(y)
    return y * 2


def without_break(x):
    y = x.sin() + 1
    return y * 2
'''


def noop(value):
    return None


def fresh_functions():
    namespace = {"noop": noop}
    exec(compile(SOURCE, "<graph_breaks bench>", "exec"), namespace)
    return namespace["with_break"], namespace["without_break"]


def time_calls(fn, x, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    calls, rounds, firsts = (200, 2, 2) if options.quick else (3000, 5, 5)
    torch.set_grad_enabled(False)
    x = torch.randn(1, 8)
    # Kiln breaks at the untraceable call; TorchDynamo must be told to skip it.
    noop_for_dynamo = torch._dynamo.disable(noop)
    with_break, without_break = fresh_functions()
    with_break_dynamo, _ = fresh_functions()
    with_break_dynamo.__globals__["noop"] = noop_for_dynamo
    kiln_noop = capture.disable(noop)
    with_break.__globals__["noop"] = kiln_noop
    methods = {
        "eager": with_break,
        "kiln (1 break)": capture.compile(with_break, backend="eager"),
        "dynamo (1 break)": torch.compile(with_break_dynamo, backend="eager"),
        "kiln (no break)": capture.compile(without_break, backend="eager"),
        "dynamo (no break)": torch.compile(without_break, backend="eager"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in methods.values():
            fn(x)
        times = {name: [] for name in methods}
        for _ in range(rounds):
            for name, fn in methods.items():
                times[name].append(time_calls(fn, x, calls))
        print("| per call | median µs |")
        print("|---|---:|")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values) * 1e6:.1f} |")

        first = {"kiln": [], "dynamo": []}
        for _ in range(firsts):
            kiln_fn, _ = fresh_functions()
            kiln_fn.__globals__["noop"] = kiln_noop
            capture.reset()
            start = time.perf_counter()
            capture.compile(kiln_fn, backend="eager")(x)
            first["kiln"].append(time.perf_counter() - start)
            dynamo_fn, _ = fresh_functions()
            dynamo_fn.__globals__["noop"] = noop_for_dynamo
            torch._dynamo.reset()
            start = time.perf_counter()
            torch.compile(dynamo_fn, backend="eager")(x)
            first["dynamo"].append(time.perf_counter() - start)
        print("\n| first call (capture of both pieces + run) | median ms |")
        print("|---|---:|")
        for name, values in first.items():
            print(f"| {name} | {statistics.median(values) * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
