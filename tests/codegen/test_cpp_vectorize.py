"""The C++ kernels' hot loops are ones g++ vectorizes, checked with g++'s own report
(-fopt-info-vec-optimized) on the sources Kiln generates; and their loop structure."""
import re
import subprocess

import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln import config
from kiln.codegen.cpp import build
from kiln.codegen.cpp.render import render_source
from kiln.backend import compile_graph

WORKLOADS = {  # name -> (fn, inputs): the benchmark's shapes of computation, at small sizes
    "pointwise": (lambda x, y: (x.sin() * 2.0 + y).relu() * y.tanh() + x * 0.5 + torch.erf(x) * x.exp(),
                  [torch.randn(1 << 16), torch.randn(1 << 16)]),
    "softmax": (lambda x: torch.softmax(x, -1), [torch.randn(64, 1000)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (512,), w, b), [torch.randn(64, 512), torch.randn(512), torch.randn(512)]),
    "reductions": (lambda x: (x.sum(-1), x.var(-1), x.amax(-1), x.argmax(-1), x.sum()), [torch.randn(64, 1024)]),
    "gelu_bias": (lambda x, b: F.gelu(x + b), [torch.randn(64, 512), torch.randn(512)]),
    "columns": (lambda x: (x.sum(0), x.var(0), x.amax(0)), [torch.randn(512, 256)]),
    "streamed": (lambda x, y: ((x * 2.0 + y).relu(), x - y), [torch.randn(64, 1024), torch.randn(1024)]),
    # 16-bit floats: loads widen and stores round lane by lane (branch-free conversions)
    "pointwise_f16": (lambda x, y: (x.sin() * 2.0 + y).relu() * y.tanh() + x * 0.5,
                      [torch.randn(1 << 16).half(), torch.randn(1 << 16).half()]),
    "softmax_bf16": (lambda x: torch.softmax(x, -1), [torch.randn(64, 1000).bfloat16()]),
    "layer_norm_f16": (lambda x, w, b: F.layer_norm(x, (512,), w, b),
                       [torch.randn(64, 512).half(), torch.randn(512).half(), torch.randn(512).half()]),
    "reductions_bf16": (lambda x: (x.sum(-1), x.amax(-1), x.argmax(-1), x.sum(0)), [torch.randn(64, 1024).bfloat16()]),
}


def _hot_loops(source: str) -> list[int]:
    """1-based line numbers of innermost loops: the vector-lane loops and `#pragma omp ... simd` loops."""
    lines = source.splitlines()
    hot = []
    for i, line in enumerate(lines):
        if "for (int64_t kiln_l = 0;" in line or ("for (" in line and i and "simd" in lines[i - 1]):
            hot.append(i + 1)
    return hot


def test_inner_loops_are_vectorized(tmp_path, monkeypatch):
    from kiln.codegen.cpp import render

    monkeypatch.setattr(render, "STREAM_MIN_BYTES", 1 << 18)  # the "streamed" workload's stores stream
    kernels = []
    for name, (fn, inputs) in WORKLOADS.items():
        compiled = compile_graph(fx.symbolic_trace(fn), inputs, target="cpp")
        for k in compiled.kernels:
            k.name = f"{name}_{k.name}"
            kernels.append(k)
    source = render_source(kernels)
    path = tmp_path / "kernels.cpp"
    path.write_text(source)
    flags = [f for f in build.FLAGS if f not in ("-shared", "-fPIC")]
    proc = subprocess.run([config.cxx, *flags, "-c", str(path), "-o", str(tmp_path / "k.o"), "-fopt-info-vec-all"],
                          capture_output=True, text=True, check=True)
    vectorized = {int(m.group(1)) for m in re.finditer(r"kernels\.cpp:(\d+):\d+: optimized: loop vectorized", proc.stderr)}
    # a loop that only copies becomes a memcpy call (vectorized inside libc)
    vectorized |= {int(m.group(1)) - 1 for m in re.finditer(r"kernels\.cpp:(\d+):\d+: missed: statement clobbers "
                                                            r"memory: __builtin_memcpy", proc.stderr)}
    hot = _hot_loops(source)
    assert len(hot) >= 10 and "kiln_stream64(&" in source
    missed = [(n, source.splitlines()[n - 1].strip()) for n in hot
              if not {n, n + 1, n + 2} & vectorized]
    assert not missed, f"loops g++ did not vectorize: {missed}"


def test_few_long_rows_split_across_threads():
    c = compile_graph(fx.symbolic_trace(lambda x: (x.sum(), x.amax(1))), [torch.randn(4, 1 << 14)], target="cpp")
    src = c.backend.source
    assert src.count("#pragma omp parallel num_threads(kiln_threads())") == 2  # both: 1 and 4 rows
    assert "kiln_fold_sum(kiln_nt" in src and "kiln_fold_max(kiln_nt" in src


def test_rows_across_memory_run_as_column_blocks():
    from kiln.codegen.cpp.render import loop_mode

    c = compile_graph(fx.symbolic_trace(lambda x: (x.sum(0), x.sum(1))), [torch.randn(512, 256)], target="cpp")
    assert sorted(loop_mode(k) for k in c.kernels) == ["columns", "rows"]


def test_many_rows_run_in_parallel_and_pointwise_loops_are_simd():
    rows = compile_graph(fx.symbolic_trace(lambda x: x.sum(1)), [torch.randn(256, 512)], target="cpp").backend.source
    assert "#pragma omp parallel for\n" in rows
    flat = compile_graph(fx.symbolic_trace(lambda x: x.exp() + 1), [torch.randn(256, 512)], target="cpp").backend.source
    assert "#pragma omp parallel for simd\n  for (int64_t x0 = 0; x0 < 131072; ++x0)" in flat  # dims merged
