"""`kiln demo`: compile a small model-like function end to end, check it, and time it."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def mlp_block(x, w1, b1, w2, b2, gamma, beta):
    """A GELU MLP with a residual, layer_norm, and a softmax head."""
    h = F.gelu(x @ w1 + b1)
    y = h @ w2 + b2 + x
    y = F.layer_norm(y, (y.shape[-1],), gamma, beta)
    return y, torch.softmax(y * 0.5, dim=-1)


def _inputs(batch, d, hidden):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, d, generator=g), torch.randn(d, hidden, generator=g) / d ** 0.5,
            torch.randn(hidden, generator=g) * 0.1, torch.randn(hidden, d, generator=g) / hidden ** 0.5,
            torch.randn(d, generator=g) * 0.1, torch.ones(d), torch.zeros(d))


def _median_time(fn, args, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_demo(out_dir: str | None, target: str | None = None, batch=512, d=512, hidden=2048) -> int:
    import kiln

    out_dir = out_dir or tempfile.mkdtemp(prefix="kiln_demo_")
    kiln.config.dump_dir = Path(out_dir).resolve()
    if target:
        kiln.config.target = target
    if target == "triton" and not torch.cuda.is_available():
        batch, d, hidden = 16, 64, 128  # the Triton interpreter is slow: keep it small
    args = _inputs(batch, d, hidden)
    compiled = kiln.compile(mlp_block)
    print(f"kiln demo: mlp_block on x[{batch}x{d}], hidden {hidden} (target: {target or 'default for the device'})")
    with torch.no_grad():
        t0 = time.perf_counter()
        got = compiled(*args)
        first = time.perf_counter() - t0
        expected = mlp_block(*args)
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e)
        print("  result matches eager (torch.testing.assert_close on both outputs)")
        reps = 3 if target == "triton" and not torch.cuda.is_available() else 30
        for fn in (mlp_block, compiled):  # warm up both
            fn(*args)
        rounds = {"eager": [], "kiln": []}
        for _ in range(3):  # interleaved
            rounds["eager"].append(_median_time(mlp_block, args, reps))
            rounds["kiln"].append(_median_time(compiled, args, reps))
    eager, fast = min(rounds["eager"]), min(rounds["kiln"])
    print(f"  compile time (first call: capture + lowering + kernel build or cache load): {first * 1e3:.0f} ms")
    print(f"  eager: {eager * 1e3:.3f} ms/call   kiln: {fast * 1e3:.3f} ms/call   speed-up: {eager / fast:.2f}x")
    fell_back = [r.reason for r in kiln.capture.compiled_records() if r.reason]
    fell_back += [r.reason for r in kiln.records.backend_records() if not r.compiled]
    if fell_back:
        print(f"  note: {len(fell_back)} function(s) or graph(s) ran eagerly: " + "; ".join(fell_back))
    written = sorted(p for p in Path(out_dir).rglob("*") if p.is_file())
    print(f"  generated kernels and every stage were written to {Path(out_dir).resolve()}:")
    for p in written:
        print(f"    {p.relative_to(Path(out_dir))}")
    return 0
