"""What the out-of-range index checks cost in C++ kernels (docs/architecture.md, "Errors").

Each case is compiled twice in one process: as Kiln builds it (CHECK_INDEX: branch-free compare,
`kiln_bad |=`, index 0 when bad) and with the check rendered as the bare index. The two callables
and eager are timed interleaved (min of N rounds), so machine drift hits all three alike.

    python bench/index_checks.py [--rounds 40] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.fx as fx

from kiln.codegen.cpp import ops
from kiln.backend import compile_graph
from kiln.inductor.ir.loop import LoopOp

CASES = {
    "embedding 50000x256, 8192 ids": (lambda w, i: torch.nn.functional.embedding(i, w),
                                      lambda: (torch.randn(50000, 256), torch.randint(0, 50000, (8192,)))),
    "gather dim 1, 2048x2048": (lambda x, i: torch.gather(x, 1, i),
                                lambda: (torch.randn(2048, 2048), torch.randint(0, 2048, (2048, 2048)))),
    "x[i, j], 2**20 pairs on 1000x1000": (lambda x, i, j: x[i, j],
                                          lambda: (torch.randn(1000, 1000), torch.randint(0, 1000, (1 << 20,)),
                                                   torch.randint(0, 1000, (1 << 20,)))),
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
    checked = ops.EXPR[LoopOp.CHECK_INDEX]
    print("| case | checked ms | unchecked ms | eager ms |\n|---|---|---|---|")
    for name, (fn, make) in CASES.items():
        args = make()
        calls = []
        for expr in (checked, "({0} + 0 * kiln_bad)"):
            ops.EXPR[LoopOp.CHECK_INDEX] = expr
            try:
                calls.append(compile_graph(fx.symbolic_trace(fn), list(args), target="cpp").call)
            finally:
                ops.EXPR[LoopOp.CHECK_INDEX] = checked
        calls.append(fn)
        times = [[], [], []]
        for _ in range(opts.rounds):
            for t, f in zip(times, calls):
                t.append(_time(f, args))
        print(f"| {name} | " + " | ".join(f"{min(t) * 1e3:.2f}" for t in times) + " |")


if __name__ == "__main__":
    main()
