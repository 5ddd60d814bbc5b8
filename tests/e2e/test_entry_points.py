"""The three ways in: @capture.compile, torch.compile(backend="kiln"), and the `kiln` command."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from kiln import capture
from kiln.backend import KilnCompileWarning
from kiln import config

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["0_captured_graph.py", "1_aten_graph.py", "1_aten_functional.py", "2_prims_graph.py", "3_loop_ir.txt",
          "4_schedule.txt", "6_wrapper.py"]


def thin_path(x, y):
    a = torch.sin(x) * 2.0 + y
    b = a.relu() - x / 3
    return torch.softmax(b, dim=-1), b.sum(dim=1, keepdim=True), a.mean()


def _assert_same(got, expected):
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
        assert g.stride() == e.stride()


def test_capture_compile_with_kiln_backend():
    x, y = torch.randn(8, 32), torch.randn(8, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = capture.compile(thin_path, fullgraph=True)
        for _ in range(2):
            _assert_same(f(x, y), thin_path(x, y))
        x2, y2 = torch.randn(3, 5), torch.randn(3, 5)  # new shape: guards fail, Kiln recompiles
        _assert_same(f(x2, y2), thin_path(x2, y2))


def test_kiln_is_a_registered_dynamo_backend():
    out = subprocess.run([sys.executable, "-c", "import torch; print('kiln' in torch._dynamo.list_backends())"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_torch_compile_backend_kiln():
    torch._dynamo.reset()
    x, y = torch.randn(8, 32), torch.randn(8, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        f = torch.compile(thin_path, backend="kiln")
        _assert_same(f(x, y), thin_path(x, y))


def test_torch_compile_module_with_kiln_in_inference():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 16),
                                torch.nn.LayerNorm(16))
    x = torch.randn(4, 16)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        torch.testing.assert_close(torch.compile(model, backend="kiln")(x), model(x))


def test_training_graph_compiles_forward_and_backward():
    torch._dynamo.reset()
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        out = torch.compile(lin, backend="kiln")(x)
    assert type(out.grad_fn).__name__ == "TrainingFunctionBackward"  # Kiln's compiled backward
    torch.testing.assert_close(out, lin(x))
    out.sum().backward()
    torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(4, 4))


def refused_training_graph(a, x):
    a.mul_(2)  # an input requiring grad written in place: refused in training (docs/training.md)
    return x @ a


def test_refused_training_graph_falls_back_with_one_warning_and_strict_raises(monkeypatch):
    torch._dynamo.reset()
    w, x = torch.randn(4, 4, requires_grad=True), torch.randn(2, 4)
    with pytest.warns(KilnCompileWarning, match="written in place") as record:
        out = torch.compile(refused_training_graph, backend="kiln")(w * 1, x)  # a non-leaf: eager allows it
    assert len([r for r in record if issubclass(r.category, KilnCompileWarning)]) == 1
    torch.testing.assert_close(out, x @ (w * 2))
    out.sum().backward()  # the eager fallback keeps autograd working
    torch.testing.assert_close(w.grad, 2 * x.sum(0)[:, None].expand(4, 4))
    monkeypatch.setattr(config, "strict", True)
    from kiln.backend import compile_fx

    gm = torch.fx.symbolic_trace(refused_training_graph)
    with pytest.raises(Exception, match="written in place"):
        compile_fx(gm, [torch.randn(4, 4, requires_grad=True) * 1, x])


def _kiln(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "kiln", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_kiln_dump_writes_every_stage(tmp_path):
    out = _kiln("dump", str(ROOT / "examples" / "pointwise_softmax.py"), "-o", str(tmp_path / "d"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    graph = tmp_path / "d" / "graph_000"
    for stage in STAGES + ["5_kernels.cpp"]:
        assert (graph / stage).exists(), stage
    assert "prims_exp" in (graph / "2_prims_graph.py").read_text()
    assert 'extern "C" void kernel0' in (graph / "5_kernels.cpp").read_text()


def test_kiln_dump_triton(tmp_path):
    out = _kiln("dump", str(ROOT / "examples" / "pointwise_softmax.py"), "--target", "triton", "-o",
                str(tmp_path / "d"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    src = (tmp_path / "d" / "graph_000" / "5_kernels_triton.py").read_text()
    assert "@triton.jit" in src and "tl.load(" in src


def test_kiln_explain_lists_graphs_and_fallbacks(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        "import torch, kiln\n"
        "@kiln.compile\n"
        "def good(x):\n    return x.sin() + 1\n"
        "@kiln.compile\n"
        "def bad(x):\n    print('hi')\n    return x + 1\n"
        "@kiln.compile\n"
        "def gen(x):\n    yield x\n"
        "good(torch.randn(3)); bad(torch.randn(3)); list(gen(torch.randn(3)))\n")
    out = _kiln("explain", str(script), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert ("2 graph(s) captured (0 by TorchDynamo), 0 of them ran eagerly in the back end, 1 graph break(s), "
            "1 function(s) fell back to eager") in out.stdout, out.stdout
    assert "good" in out.stdout and "bad" in out.stdout and "s.py:" in out.stdout
    assert "graph break at" in out.stdout and "call to builtin print()" in out.stdout


def test_output_code_log(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import torch, kiln\nf = kiln.compile(lambda x: x.exp() * 2)\nf(torch.randn(4))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "KILN_LOGS": "output_code,graph"})
    assert out.returncode == 0, out.stderr
    assert "extern \"C\" void kernel0" in out.stderr and "def call(" in out.stderr


def test_compile_time_log_and_stage_totals(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import torch, kiln\nfrom kiln import logs\n"
                      "f = kiln.compile(lambda x: (x.exp() * 2).sum(-1))\nf(torch.randn(4, 8))\n"
                      "print(sorted(logs.stage_totals()))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "KILN_LOGS": "compile_time", "KILN_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("[kiln.compile_time]")]
    assert "<lambda> (" in line and "trace_aten" in line and "cxx_build" in line, line
    stages = eval(out.stdout.strip().splitlines()[-1])
    assert {"trace_aten", "functionalize", "decompose", "lower", "schedule", "render", "cxx_build", "wrapper"} <= set(stages)
