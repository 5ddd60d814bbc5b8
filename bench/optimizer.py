"""Optimizer step benchmark: eager (foreach) vs `torch.compile(opt.step)` with inductor vs Kiln.

Each optimizer updates the same parameter set (a GPT-2-small-like mix: square and wide matrices,
biases, LayerNorm weights) from the same gradients; the methods run interleaved, one step each per
round, and the script prints the median step time, ratios, first-call (compile) time and the
largest parameter difference from eager after the timed steps (compiled steps may round
differently from eager's foreach kernels).

    python bench/optimizer.py [--rounds 20] [--markdown] [--only adamw]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

SHAPES = [(768, 768)] * 4 + [(3072, 768), (768, 3072)] + [(768,)] * 8 + [(3072,)]
OPTIMIZERS = {
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01, foreach=True),
    "adam_single_tensor": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True),
}
METHODS = ["eager", "inductor", "kiln"]


def _params():
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.02) for s in SHAPES]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return ps


def _step(method, opt):
    if method == "eager":
        return opt.step
    return torch.compile(opt.step, backend="inductor" if method == "inductor" else "kiln")


def run(name, rounds):
    made = {}
    for method in METHODS:
        ps = _params()
        opt = OPTIMIZERS[name](ps)
        step = _step(method, opt)
        start = time.perf_counter()
        step()
        made[method] = (step, ps, time.perf_counter() - start)
    times = {m: [] for m in METHODS}
    for _ in range(rounds):
        for m in METHODS:
            start = time.perf_counter()
            made[m][0]()
            times[m].append(time.perf_counter() - start)
    med = {m: statistics.median(times[m]) for m in METHODS}
    err = {m: max((p - q).abs().max().item() for p, q in zip(made[m][1], made["eager"][1])) for m in METHODS}
    return med, {m: made[m][2] for m in METHODS}, err


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=sorted(OPTIMIZERS), action="append")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    numel = sum(torch.Size(s).numel() for s in SHAPES)
    print(f"### Optimizer step: {len(SHAPES)} parameters, {numel / 1e6:.2f} M elements, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds\n")
    print("| optimizer | eager ms | inductor ms | kiln ms | kiln vs eager | kiln vs inductor | first call s "
          "(eager / inductor / kiln) | max param diff vs eager (inductor / kiln) |")
    print("|---|--:|--:|--:|--:|--:|---|---|")
    for name in args.only or sorted(OPTIMIZERS):
        med, first, err = run(name, args.rounds)
        print(f"| {name} | {med['eager'] * 1e3:.2f} | {med['inductor'] * 1e3:.2f} | {med['kiln'] * 1e3:.2f} | "
              f"{med['eager'] / med['kiln']:.2f} | {med['inductor'] / med['kiln']:.2f} | "
              f"{first['eager']:.2f} / {first['inductor']:.2f} / {first['kiln']:.2f} | "
              f"{err['inductor']:.1e} / {err['kiln']:.1e} |")


if __name__ == "__main__":
    main()
