"""The profiled wrapper (codegen/profile.py, `KILN_PROFILE=1`): every kernel and library call of a
compiled graph timed per call, with the bytes its buffers hold, and the report built from them."""
import re

import torch
import torch.fx as fx

import kiln
from kiln import config
from kiln.codegen import profile


def _graph(fn, n):
    g = fx.Graph()
    args = [g.placeholder(f"x{i}") for i in range(n)]
    g.output(fn(*args))
    return fx.GraphModule(torch.nn.Module(), g)


def _compiled(monkeypatch, fn, inputs):
    monkeypatch.setattr(config, "profile", True)
    gm = fx.symbolic_trace(fn)
    return kiln.compile_graph(gm, inputs, target="cpp")


def test_every_step_timed_with_its_bytes(monkeypatch):
    profile.clear()
    x, w = torch.randn(8, 16), torch.randn(16, 4)
    compiled = _compiled(monkeypatch, lambda x, w: (torch.relu(x) @ w).sum(1), [x, w])
    for _ in range(3):
        torch.testing.assert_close(compiled.call(x, w), (torch.relu(x) @ w).sum(1))
    (graph,) = profile.PROFILES
    assert graph.calls == 3 and graph.seconds > 0
    kinds = sorted(s.kind for s in graph.steps)
    assert kinds == ["kernel", "kernel", "matmul"], graph.steps
    assert all(s.calls == 3 and s.seconds > 0 for s in graph.steps)
    relu, row_sum = (s for s in graph.steps if s.kind == "kernel")
    assert relu.detail == "outer [128]" and relu.nbytes == 2 * 8 * 16 * 4  # reads x, writes relu(x): float32
    assert row_sum.detail == "outer [8], inner [4]" and row_sum.nbytes == (8 * 4 + 8) * 4
    matmul = next(s for s in graph.steps if s.kind == "matmul")
    assert matmul.detail == "([8, 16], [16, 4])" and matmul.nbytes == (8 * 16 + 16 * 4 + 8 * 4) * 4
    assert sum(s.seconds for s in graph.steps) <= graph.seconds


def test_report_lists_steps_by_time_and_the_wrapper_share(monkeypatch):
    profile.clear()
    x = torch.randn(64, 32)
    compiled = _compiled(monkeypatch, lambda x: (x.exp() + 1).amax(0), [x])
    for _ in range(2):
        compiled.call(x)
    text = kiln.profile_report()
    assert text.startswith("kiln profile: 1 graph(s)"), text
    step_lines = [line for line in text.splitlines() if re.match(r"\s+[\d.]+\s+2\s", line)]
    assert step_lines and all("graph 0" in line and "[kernel]" in line for line in step_lines), text
    times = [float(line.split()[0]) for line in step_lines]
    assert times == sorted(times, reverse=True)
    assert re.search(r"graph 0: 2 calls, [\d.]+ ms, steps \d+%, wrapper [\d.]+ us", text), text


def test_graphs_compiled_without_profiling_are_not_timed(monkeypatch):
    profile.clear()
    monkeypatch.setattr(config, "profile", False)
    compiled = kiln.compile_graph(fx.symbolic_trace(lambda x: x * 2), [torch.randn(3)], target="cpp")
    compiled.call(torch.randn(3))
    assert not profile.PROFILES and "_clock" not in compiled.wrapper_source
    assert kiln.profile_report() == "kiln profile: no profiled graph was called"
