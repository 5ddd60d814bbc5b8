"""What an op-level fallback costs (issue 20: "no more than eager's own call of that op").

Each case is a function whose graph holds ATen ops Kiln runs as they are (a `kiln.fallback` for a
dtype the target cannot render, or a library call), alone and between generated kernels. It runs
compiled through `torch.compile(backend="kiln")` and eagerly, timed interleaved (min of N rounds),
and prints Kiln's per-call time over eager's and the op-level fallbacks the back end recorded, so
a case that silently stopped falling back (or started refusing the graph) shows.

    python bench/op_fallback.py [--rounds 40] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch

import kiln
from kiln import records

F8 = torch.float8_e4m3fn

CASES = {
    # a dtype no target renders: the casts run as ATen ops, the rest is generated
    "float8 round trip, 1M": (lambda x: x.to(F8).to(torch.float32), lambda: (torch.randn(1 << 20),)),
    "x*2 -> float8 round trip -> +1, 1M": (lambda x: (x * 2).to(F8).to(torch.float32) + 1,
                                          lambda: (torch.randn(1 << 20),)),
    # an FFT (a library call) and a complex op that is not generated (complex abs is: real pairs)
    "rfft + exp + abs + sum, 256x1024": (lambda x: torch.fft.rfft(x).exp().abs().sum(-1),
                                         lambda: (torch.randn(256, 1024) * 0.01,)),
    "rfft + abs + sum, 256x1024": (lambda x: torch.fft.rfft(x).abs().sum(-1), lambda: (torch.randn(256, 1024),)),
    # library calls between kernels
    "sort values * 2, 1024x1024": (lambda x: x.sort(-1).values * 2, lambda: (torch.randn(1024, 1024),)),
    "tiny op, 8 elements": (lambda x: x.to(F8).to(torch.float32), lambda: (torch.randn(8),)),
}


def _time(f, args) -> float:
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    print("| case | eager ms | kiln ms | kiln / eager | graphs: kernels, op-level fallbacks |\n|---|---|---|---|---|")
    for name, (fn, make) in CASES.items():
        args = make()
        records.clear()
        torch._dynamo.reset()
        compiled = torch.compile(fn, backend="kiln")
        with warnings.catch_warnings():
            warnings.simplefilter("error", kiln.KilnCompileWarning)  # a whole-graph fallback is not this bench
            torch.testing.assert_close(compiled(*args), fn(*args))
        graphs = "; ".join(f"{r.kernels} kernel(s), " + (", ".join(str(f) for f in r.fallbacks) or "none")
                           for r in records.backend_records())
        times = [[], []]
        for _ in range(opts.rounds):
            for t, f in zip(times, (fn, compiled)):
                t.append(_time(f, args))
        eager, mine = (min(t) * 1e3 for t in times)
        print(f"| {name} | {eager:.3f} | {mine:.3f} | {mine / eager:.2f} | {graphs} |")


if __name__ == "__main__":
    main()
