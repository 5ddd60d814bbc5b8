"""GPU benchmark: eager vs torch.compile (inductor) vs Kiln (Triton kernels) on the CPU benchmark's
workloads (bench/cpu_bench.py) at GPU sizes.

Usage (from the repository root, in the virtualenv):

    python bench/gpu_bench.py                  # every workload at GPU sizes (needs CUDA)
    python bench/gpu_bench.py --only softmax   # one workload (repeat --only for several)
    python bench/gpu_bench.py --markdown       # markdown only, for pasting into bench/RESULTS.md
    python bench/gpu_bench.py --smoke          # no GPU needed: tiny sizes on CPU, Kiln's Triton target
                                               # under the interpreter, eager and Kiln only; checks that
                                               # this script works, measures nothing meaningful

Without CUDA (and without --smoke) it says so and exits 0.

What is measured
  * Steady state: median time per call from triton.testing.do_bench (CUDA events, L2 flushed
    between calls) for eager, inductor (torch.compile(fn)) and Kiln (capture.compile(fn,
    fullgraph=True); CUDA inputs select Kiln's Triton target). Ratios are time(other) / time(kiln):
    > 1 means Kiln is faster.
  * Compile time: the first call of each compiled method (capture + compile + Triton's kernel
    compile + Kiln's one-off autotuning + the call), in this process, with KILN_CACHE_DIR and
    TORCHINDUCTOR_CACHE_DIR pointed at fresh temporary directories (cold caches; --warm-caches keeps
    the default ones). Importing torch._dynamo/torch._inductor/Kiln happens before any timing.
  * Accuracy: max abs difference from eager over all outputs.

Kiln runs with KILN_STRICT=1, so a graph it cannot compile raises (reported as FAILED) rather
than silently running eagerly. No assertions on speed live here or in the tests.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("KILN_STRICT", "1")
if "--warm-caches" not in sys.argv:  # before torch._inductor and Kiln read them
    _cold = tempfile.mkdtemp(prefix="kiln-gpu-bench-")
    os.environ["KILN_CACHE_DIR"] = os.path.join(_cold, "kiln")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(_cold, "inductor")
if "--smoke" in sys.argv:
    os.environ.setdefault("TRITON_INTERPRET", "1")
    os.environ["KILN_TARGET"] = "triton"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's Kiln
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import cpu_bench as cpu  # noqa: E402  (the workloads and their helpers)


def _g():
    return torch.Generator().manual_seed(0)


def _linear(g, i, o):
    return torch.randn(i, o, generator=g) / i ** 0.5, torch.randn(o, generator=g) * 0.02


def _norm(g, d):
    return torch.randn(d, generator=g) * 0.1 + 1, torch.randn(d, generator=g) * 0.1


def gpu_pointwise(small=False):
    g, n = _g(), 1 << (12 if small else 26)
    return torch.randn(n, generator=g), torch.randn(n, generator=g)


def gpu_softmax(small=False):
    return (torch.randn(*((64, 128) if small else (8192, 8192)), generator=_g()),)


def gpu_layer_norm(small=False):
    g, (rows, d) = _g(), ((64, 256) if small else (32768, 1024))
    return (torch.randn(rows, d, generator=g), *_norm(g, d))


def gpu_mlp(small=False):
    g, (batch, d, hidden) = _g(), ((16, 64, 128) if small else (2048, 1024, 4096))
    x = torch.randn(batch, d, generator=g)
    return (x, *_linear(g, d, hidden), *_linear(g, hidden, d), *_norm(g, d))


def gpu_transformer_block(small=False):
    g, (batch, seq, d) = _g(), ((2, 16, 64) if small else (16, 512, 1024))
    x = torch.randn(batch, seq, d, generator=g)
    return (x, *_linear(g, d, d), *_linear(g, d, d), *_linear(g, d, d), *_linear(g, d, d), *_norm(g, d),
            *_linear(g, d, 4 * d), *_linear(g, 4 * d, d), *_norm(g, d))


def gpu_reductions(small=False):
    return (torch.randn(*((64, 128) if small else (8192, 8192)), generator=_g()),)


GPU_INPUTS = {  # name -> (make inputs on CPU, description)
    "pointwise": (gpu_pointwise, "(sin(x)*2+y).relu()*tanh(y)+x*0.5, 64M floats"),
    "softmax": (gpu_softmax, "row softmax 8192x8192"),
    "layer_norm": (gpu_layer_norm, "layer_norm 32768x1024"),
    "mlp": (gpu_mlp, "GELU MLP + residual + layer_norm, 2048x1024->4096->1024"),
    "transformer_block": (gpu_transformer_block, "encoder block, batch 16, seq 512, d 1024, 8 heads, MLP 4x"),
    "reductions": (gpu_reductions, "sum/var/amax over rows of 8192x8192"),
}
assert set(GPU_INPUTS) == set(cpu.WORKLOADS), "the GPU sizes must cover the CPU benchmark's workloads"


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def steady_ms(fn, args, device) -> float:
    if device == "cuda":
        from triton.testing import do_bench

        return do_bench(lambda: fn(*args), warmup=25, rep=100, return_mode="median")
    return cpu.time_calls(fn, args, 1) * 1e3  # --smoke: interpreter time, meaningless


def bench_workload(name, methods, smoke, log):
    fn = cpu.WORKLOADS[name][0]
    device = "cpu" if smoke else "cuda"
    args = tuple(a.to(device) for a in GPU_INPUTS[name][0](small=smoke))
    row = {"name": name, "ms": {}, "first_s": {}, "err": {}, "failed": {}}
    with torch.no_grad():
        expected = cpu._flat(fn(*args))
        for method in methods:
            try:
                compiled = cpu.make_compiled(method, fn)
                _sync(device)
                out, first = cpu.first_call(compiled, args)
                _sync(device)
                got = cpu._flat(out)
                if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
                    raise RuntimeError("outputs differ in number or shape from eager")
                row["err"][method] = max((g.double() - e.double()).abs().max().item() for g, e in zip(got, expected))
                row["first_s"][method] = first
                row["ms"][method] = steady_ms(compiled, args, device)
            except Exception as e:  # noqa: BLE001  (a failing method is a result, not a crash)
                row["failed"][method] = cpu._short(e)
                log(f"  {name}/{method}: FAILED: {cpu._short(e, 400)}")
    return row


def _fmt_ms(ms):
    return "—" if ms is None else f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def table(rows, methods):
    head = ["workload"] + [f"{m} ms" for m in methods]
    if "kiln" in methods:
        head += [f"kiln speed vs {m}" for m in methods if m != "kiln"]
    head += [f"{m} first call s" for m in methods if m != "eager"]
    if {"inductor", "kiln"} <= set(methods):
        head.append("kiln compile speed-up vs inductor")
    head.append("max abs err " + " / ".join(m for m in methods if m != "eager"))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 2) + ["---"]) + "|"]
    speed = {m: [] for m in methods}
    for r in rows:
        ms, first = r["ms"], r["first_s"]
        cells = [r["name"]] + [f"FAILED: {r['failed'][m]}" if m in r["failed"] else _fmt_ms(ms.get(m))
                               for m in methods]
        if "kiln" in methods:
            for m in methods:
                if m != "kiln":
                    ratio = ms[m] / ms["kiln"] if m in ms and "kiln" in ms else None
                    speed[m].append(ratio)
                    cells.append(cpu.fmt_x(ratio))
        cells += [f"{first[m]:.2f}" if m in first else "—" for m in methods if m != "eager"]
        if {"inductor", "kiln"} <= set(methods):
            ok = "inductor" in first and "kiln" in first
            cells.append(cpu.fmt_x(first["inductor"] / first["kiln"] if ok else None))
        cells.append(" / ".join(f"{r['err'][m]:.1e}" if m in r["err"] else "FAILED" for m in methods if m != "eager"))
        lines.append("| " + " | ".join(cells) + " |")
    if "kiln" in methods:
        lines.append("")
        lines.append("Geomean Kiln speed (time of the other / time of Kiln; > 1 = Kiln faster): " + ", ".join(
            f"vs {m} **{cpu.fmt_x(cpu.geomean(v))}x**" for m, v in speed.items() if m != "kiln") + ".")
    return "\n".join(lines)


def machine_line(smoke) -> str:
    import triton

    gpu = "no GPU (--smoke: CPU, Triton interpreter)" if smoke else torch.cuda.get_device_name()
    return (f"{gpu}, torch {torch.__version__}, triton {triton.__version__}, "
            f"CUDA {torch.version.cuda}, Python {sys.version.split()[0]}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=list(cpu.WORKLOADS), help="run only this workload")
    p.add_argument("--methods", default=None, help="comma-separated subset of eager,inductor,kiln,dynamo+kiln")
    p.add_argument("--markdown", action="store_true", help="print only the markdown report")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU under Triton's interpreter (no GPU)")
    p.add_argument("--warm-caches", action="store_true", help="keep the default Kiln/inductor cache dirs")
    a = p.parse_args(argv)
    if not a.smoke and not torch.cuda.is_available():
        print("gpu_bench: CUDA is not available on this machine; nothing to measure "
              "(use --smoke to check the script under Triton's interpreter).")
        return 0
    methods = a.methods.split(",") if a.methods else (["eager", "kiln"] if a.smoke else ["eager", "inductor", "kiln"])
    names = a.only or list(cpu.WORKLOADS)

    def log(msg):
        if not a.markdown:
            print(msg, file=sys.stderr, flush=True)

    cpu.preimport()
    import kiln.codegen.triton  # noqa: F401  (imported before any first call is timed)

    rows = []
    for name in names:
        log(f"{name} ...")
        t0 = time.perf_counter()
        rows.append(bench_workload(name, methods, a.smoke, log))
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    report = [f"## Kiln GPU benchmark{' (--smoke: not a measurement)' if a.smoke else ''}", "",
              f"Machine: {machine_line(a.smoke)}", "", "Workloads:"]
    report += [f"- `{n}`: {'tiny sizes' if a.smoke else GPU_INPUTS[n][1]}" for n in names]
    report += ["", "### Steady state (ms per call, median) and first-call compile time", "", table(rows, methods), ""]
    caches = "default (possibly warm) caches" if a.warm_caches else "cold caches (fresh temporary directories)"
    timer = "time.perf_counter, one call (interpreter)" if a.smoke else "triton.testing.do_bench (median)"
    report.append(f"First call = capture + compile + kernel build + autotuning + one run, in-process, {caches}. "
                  f"Steady-state times: {timer}.")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
