"""Capture overhead: Kiln's bytecode capture vs TorchDynamo, both with the "eager" backend.

Usage (from the repository root, in the virtualenv):

    python bench/capture_overhead.py             # full run (about a minute or two)
    python bench/capture_overhead.py --quick     # smoke test: fewer calls and rounds
    python bench/capture_overhead.py --markdown  # markdown only (no progress lines), for pasting
    python bench/capture_overhead.py --ops 50 --ops 500 --rounds 5 --calls 5000

What is measured (one process, under torch.no_grad(), methods interleaved round by round):
  1. Per-call overhead of an already-compiled trivial function on a 1-element tensor:
       plain eager | capture.compile(fn, backend="eager") | torch.compile(fn, backend="eager")
     plus, for reference, the full compilers: capture.compile(fn) (Kiln back end) and
     torch.compile(fn) (inductor). Each round times a loop of N calls; the table shows the
     median over rounds of the time per call, and the overhead over plain eager.
  2. First-call capture time of generated straight-line functions of N tensor ops (source text
     built and exec'd afresh for every measurement, so every call sees a new code object):
       capture.compile(fn, backend="eager", fullgraph=True) vs
       torch.compile(fn, backend="eager", fullgraph=True),
     with capture.reset() / torch._dynamo.reset() before each. One untimed warm-up compile per
     method runs first, so one-time lazy initialisation is not counted. The first call includes
     running the function once (the eager run time of the function is shown for reference).
     Each first call is timed twice: wall clock (perf_counter) and CPU time of the process
     (process_time), which leaves out the time other jobs on a shared machine take the CPU.

A method that fails prints "FAILED: reason" in its cell instead of stopping the run.
No timing assertions live here or anywhere in the tests: speed is for benchmarks only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("KILN_STRICT", "1")  # a Kiln failure raises (reported as FAILED), never hides as eager

# Import this checkout's packages, not whichever one the virtualenv's editable install points at
# (`python bench/x.py` puts bench/ first on sys.path, not the repository root).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402

from kiln import capture  # noqa: E402

# --------------------------------------------------------------------------------------------
# Per-call overhead
# --------------------------------------------------------------------------------------------


def add_one(x):
    return x + 1


def identity_view(x):  # "no-op-ish": one view op, no arithmetic
    return x.view(-1)


def ten_layer_module():
    """The issue-15 guard-cost case: a 10-layer module (Linear + ReLU each) on a 1x8 input."""
    torch.manual_seed(0)
    return torch.nn.Sequential(*[m for _ in range(10) for m in (torch.nn.Linear(8, 8), torch.nn.ReLU())])


TRIVIAL = {"x + 1": add_one, "x.view(-1)": identity_view, "10-layer module": ten_layer_module()}
INPUTS = {"10-layer module": (1, 8)}  # others: a 1-element tensor

OVERHEAD_METHODS = {
    "eager": lambda fn: fn,
    "kiln capture (eager backend)": lambda fn: capture.compile(fn, backend="eager", fullgraph=True),
    "dynamo (eager backend)": lambda fn: torch.compile(fn, backend="eager", fullgraph=True),
    "kiln (full)": lambda fn: capture.compile(fn, fullgraph=True),
    "inductor (full)": lambda fn: torch.compile(fn, fullgraph=True),
}


def _short(e: BaseException, limit=160) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ").replace("|", "/")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _checked_first_call(f, args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = f(*args)
    for w in caught:
        if type(w.message).__name__ in ("KilnCompileWarning", "FallbackWarning"):
            raise RuntimeError(f"Kiln fell back to eager: {w.message}")
    return out


def per_call_overhead(calls, rounds, log):
    results = {}
    for label, fn in TRIVIAL.items():
        x = torch.ones(INPUTS.get(label, (1,)))
        runners, failed = {}, {}
        expected = fn(x)
        for m, make in OVERHEAD_METHODS.items():
            try:
                f = make(fn)
                out = _checked_first_call(f, (x,))
                if not torch.allclose(out, expected):
                    raise RuntimeError("result differs from eager")
                for _ in range(100):  # warm-up
                    f(x)
                runners[m] = f
            except Exception as e:  # noqa: BLE001
                failed[m] = _short(e)
                log(f"  {label}/{m}: FAILED: {_short(e, 400)}")
        samples = {m: [] for m in runners}
        for _ in range(rounds):
            for m, f in runners.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    f(x)
                samples[m].append((time.perf_counter() - t0) / calls)
        results[label] = ({m: statistics.median(s) for m, s in samples.items()}, failed)
    return results


def overhead_table(results, calls, rounds):
    methods = list(OVERHEAD_METHODS)
    head = ["function"] + [f"{m} µs" for m in methods] + ["kiln capture overhead µs", "dynamo overhead µs",
                                                         "dynamo / kiln capture (per call)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    for label, (t, failed) in results.items():
        cells = [f"`{label}`"]
        for m in methods:
            cells.append(f"FAILED: {failed[m]}" if m in failed else f"{t[m] * 1e6:.2f}")
        eager = t.get("eager")
        kc, dy = t.get("kiln capture (eager backend)"), t.get("dynamo (eager backend)")
        cells.append(f"{(kc - eager) * 1e6:.2f}" if kc and eager else "—")
        cells.append(f"{(dy - eager) * 1e6:.2f}" if dy and eager else "—")
        cells.append(f"{dy / kc:.2f}" if kc and dy else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Time per call on a 1-element tensor (the module: a 1x8 input); median over {rounds} interleaved rounds of {calls} calls. "
                 "Overhead = method − plain eager. Ratio > 1 = Kiln's per-call path is faster.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# First-call capture time of generated functions
# --------------------------------------------------------------------------------------------

# Each statement is exactly one tensor op.
_STATEMENTS = [
    "x = x * 1.01",
    "x = x + 0.1",
    "x = torch.sin(x)",
    "x = x + y",
    "x = torch.relu(x)",
    "y = y * 0.99",
    "x = x.tanh()",
    "x = x - y",
]

_COUNTER = [0]


def make_chain(n_ops):
    """A fresh function object (and code object) of n_ops straight-line tensor ops."""
    _COUNTER[0] += 1
    name = f"chain_{n_ops}_{_COUNTER[0]}"
    body = "\n".join("    " + _STATEMENTS[i % len(_STATEMENTS)] for i in range(n_ops))
    src = f"def {name}(x, y):\n{body}\n    return x\n"
    namespace = {"torch": torch}
    exec(compile(src, f"<bench {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


CAPTURE_METHODS = {
    "kiln capture": (lambda fn: capture.compile(fn, backend="eager", fullgraph=True), capture.reset),
    "dynamo": (lambda fn: torch.compile(fn, backend="eager", fullgraph=True), torch._dynamo.reset),
}


def first_call_capture(op_counts, rounds, log):
    x, y = torch.randn(16), torch.randn(16)
    results = {}
    for n in op_counts:
        expected = make_chain(n)(x, y)
        eager_fn = make_chain(n)
        t0 = time.perf_counter()
        eager_fn(x, y)
        eager_s = time.perf_counter() - t0
        samples, failed = {m: [] for m in CAPTURE_METHODS}, {}
        cpu_samples = {m: [] for m in CAPTURE_METHODS}
        for m, (make, reset) in CAPTURE_METHODS.items():  # untimed warm-up compile (lazy init)
            try:
                reset()
                out = _checked_first_call(make(make_chain(n)), (x, y))
                torch.testing.assert_close(out, expected)
            except Exception as e:  # noqa: BLE001
                failed[m] = _short(e)
                log(f"  {n} ops/{m}: FAILED: {_short(e, 400)}")
        for _ in range(rounds):
            for m, (make, reset) in CAPTURE_METHODS.items():
                if m in failed:
                    continue
                reset()
                fn = make_chain(n)
                compiled = make(fn)
                t0, c0 = time.perf_counter(), time.process_time()
                compiled(x, y)
                samples[m].append(time.perf_counter() - t0)
                cpu_samples[m].append(time.process_time() - c0)
        reset_all()
        results[n] = ({m: statistics.median(s) for m, s in samples.items() if s}, failed, eager_s,
                      {m: statistics.median(s) for m, s in cpu_samples.items() if s})
        log(f"  {n} ops: " + ", ".join(f"{m} {statistics.median(s) * 1e3:.1f} ms" for m, s in samples.items() if s))
    return results


def reset_all():
    capture.reset()
    torch._dynamo.reset()


def capture_table(results, rounds):
    methods = list(CAPTURE_METHODS)
    head = ["tensor ops", "eager run ms"] + [f"{m} first call ms" for m in methods] + \
           ["kiln capture ms per op", "dynamo ms per op", "dynamo / kiln capture",
            "kiln / dynamo CPU ms", "dynamo / kiln capture (CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["--:"] * len(head)) + "|"]
    for n, (t, failed, eager_s, cpu) in results.items():
        cells = [str(n), f"{eager_s * 1e3:.2f}"]
        for m in methods:
            cells.append(f"FAILED: {failed[m]}" if m in failed else f"{t[m] * 1e3:.1f}")
        k, d = t.get("kiln capture"), t.get("dynamo")
        cells.append(f"{k * 1e3 / n:.3f}" if k else "—")
        cells.append(f"{d * 1e3 / n:.3f}" if d else "—")
        cells.append(f"{d / k:.2f}" if k and d else "—")
        kc, dc = cpu.get("kiln capture"), cpu.get("dynamo")
        cells.append(f"{kc * 1e3:.1f} / {dc * 1e3:.1f}" if kc and dc else "—")
        cells.append(f"{dc / kc:.2f}" if kc and dc else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Median over {rounds} interleaved rounds; each measurement is a fresh function object after a "
                 "reset, on 16-element inputs. Ratio > 1 = Kiln's capture is faster. CPU = process time of the "
                 "same first calls (less sensitive to other jobs on a shared machine).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer calls and rounds (smoke test)")
    p.add_argument("--markdown", action="store_true", help="print only the markdown report")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, quick 2)")
    p.add_argument("--calls", type=int, default=None, help="calls per round for per-call overhead (default 5000)")
    p.add_argument("--ops", type=int, action="append", help="op counts of generated functions (default 50, 500)")
    a = p.parse_args(argv)
    rounds = a.rounds or (2 if a.quick else 7)
    calls = a.calls or (500 if a.quick else 5000)
    op_counts = a.ops or [50, 500]

    def log(msg):
        if not a.markdown:
            print(msg, file=sys.stderr, flush=True)

    report = [f"## Kiln capture overhead{' (--quick)' if a.quick else ''}", "",
              f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, Python {sys.version.split()[0]}", ""]
    with torch.no_grad():
        log("per-call overhead ...")
        overhead = per_call_overhead(calls, rounds, log)
        report += ["### Per-call time of a compiled trivial function", "", overhead_table(overhead, calls, rounds), ""]
        log("first-call capture time ...")
        first = first_call_capture(op_counts, rounds, log)
        report += ["### First-call capture time of generated straight-line functions (eager backend)", "",
                   capture_table(first, rounds), ""]
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
