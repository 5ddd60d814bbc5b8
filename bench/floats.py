"""Float sweep: a compiled function called with a new Python float on every call (a temperature, a
residual scale, an `.item()` value across a graph break). Scalar lifting makes the float a graph
input after the first change, so the sweep compiles twice; without it, each value recompiles.

Each method runs in a fresh process with empty Kiln and Inductor caches: graphs captured, back-end
calls, the whole sweep's wall time (compiles included), then the steady per-call time of the
lifted graph against eager, interleaved.

    python bench/floats.py [--values N] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

METHODS = ["kiln", "dynamo-kiln", "inductor"]
CASES = ["temperature", "item"]


def case(name):
    import torch

    torch.manual_seed(0)
    w1, w2 = torch.randn(256, 1024) / 16, torch.randn(1024, 256) / 32

    def temperature(x, t):  # attention-style softmax with a temperature, and a residual scale
        h = torch.softmax(x @ w1 / t, -1)
        return x + t * 0.5 * torch.nn.functional.gelu(h @ w2)

    def item(x, y):  # a value read from a tensor: a graph break, then the float is the resume's input
        s = y.abs().mean().item()
        return torch.nn.functional.layer_norm(x * s, (256,)) + s

    fn = {"temperature": temperature, "item": item}[name]
    x = torch.randn(64, 256)
    if name == "temperature":
        return fn, [(x, 0.5 + 0.1 * i) for i in range(64)]
    return fn, [(x, torch.randn(64)) for _ in range(64)]


def compile_with(method, fn):
    import torch
    import kiln
    if method == "kiln":
        return kiln.compile(fn)
    if method == "dynamo-kiln":
        return torch.compile(fn, backend="kiln")
    return torch.compile(fn, backend="inductor")


def child(name, method, values):
    import torch
    from kiln import records
    torch.set_num_threads(2)
    fn, calls = case(name)
    calls = calls[:values]
    backend_calls = [0]
    compiled = compile_with(method, fn)
    if method == "inductor":  # count back-end calls through Dynamo's counters
        from torch._dynamo.utils import counters
    start = time.perf_counter()
    for args in calls:
        out = compiled(*args)
        torch.testing.assert_close(out, fn(*args), rtol=1e-4, atol=1e-4)
    sweep = time.perf_counter() - start
    if method == "inductor":
        backend_calls[0] = int(counters["stats"]["unique_graphs"])
    else:
        backend_calls[0] = len(records.backend_records())
    steady = {"eager": [], "compiled": []}
    for _ in range(5):  # interleaved rounds on the last value
        for label, f in (("eager", fn), ("compiled", compiled)):
            t = time.perf_counter()
            for _ in range(20):
                f(*calls[-1])
            steady[label].append((time.perf_counter() - t) / 20)
    print(json.dumps({"sweep_s": sweep, "backend_calls": backend_calls[0],
                      "eager_ms": 1e3 * min(steady["eager"]), "compiled_ms": 1e3 * min(steady["compiled"])}))


def run_child(name, method, values):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, KILN_CACHE_DIR=os.path.join(cache, "kiln"),
                   TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"), OMP_NUM_THREADS="2")
        out = subprocess.run([sys.executable, __file__, "--child", name, method, "--values", str(values)],
                             env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--values", type=int, default=32, help="float values in the sweep (at most 64)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, args.values)
    import torch
    print(f"bench/floats.py ({args.values} values): {os.cpu_count()} CPUs ({platform.machine()}), "
          f"torch {torch.__version__}, 2 torch threads, Python {platform.python_version()}\n")
    sep = "|" if args.markdown else " "
    head = ["case", "method", "back-end calls", "sweep s", "eager ms", "compiled ms", "vs eager"]
    print(sep.join(["", *head, ""]) if args.markdown else "  ".join(head))
    if args.markdown:
        print("|" + "---|" * len(head))
    for name in CASES:
        for method in METHODS:
            r = run_child(name, method, args.values)
            if "error" in r:
                row = [name, method, "error: " + r["error"][:80], "", "", "", ""]
            else:
                row = [name, method, str(r["backend_calls"]), f"{r['sweep_s']:.2f}", f"{r['eager_ms']:.3f}",
                       f"{r['compiled_ms']:.3f}", f"{r['eager_ms'] / r['compiled_ms']:.2f}x"]
            print(sep.join(["", *row, ""]) if args.markdown else "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
