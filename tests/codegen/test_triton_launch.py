"""Triton launching: the config heuristic, autotuning with its disk cache (timed by an injected
fake benchmark, so it runs without a GPU), target selection, standalone dumped kernels and the
examples end to end with target="triton"."""
import importlib.util
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln import capture

from kiln.codegen.triton import autotune, configs
from kiln.codegen.triton.autotune import AutotuneStats, KernelLauncher
from kiln.backend import compile_graph
from kiln.backend import pick_target as _pick_target
from kiln_testing import kernels, lower
from kiln import config

ROOT = Path(__file__).resolve().parents[2]


def _kernel(fn, *inputs):
    _, schedule = lower(fn, *inputs)
    (k,) = kernels(schedule)
    return k


def test_heuristic_pointwise():
    big = configs.candidate_configs(_kernel(lambda x: x.sin() * 2, torch.empty(1000, 1000)))
    assert [c.XBLOCK for c in big] == [1024, 256]
    assert big[0].num_warps == 8 and big[0].RBLOCK is None and big[0].num_stages == 1
    (small,) = configs.candidate_configs(_kernel(lambda x: x.sin() * 2, torch.empty(5)))
    assert small.XBLOCK == 8 and small.grid(5) == (1,)


def test_heuristic_reductions():
    k = _kernel(lambda x: x.sum(1), torch.empty(1000, 100))
    assert configs.is_persistent(k)
    first, *rest = configs.candidate_configs(k)
    assert (first.XBLOCK, first.RBLOCK) == (32, 128) and first.grid(1000) == (32,)
    assert [(c.XBLOCK, c.RBLOCK) for c in rest] == [(8, 128)]  # persistent: always the whole row
    k = _kernel(lambda x: x.sum(1), torch.empty(4, 100000))
    assert not configs.is_persistent(k)
    cands = configs.candidate_configs(k)
    assert (cands[0].XBLOCK, cands[0].RBLOCK, cands[0].num_stages) == (1, configs.LOOPED_RBLOCK, 2)
    assert len(set(cands)) == len(cands) and all(c.XBLOCK <= 4 for c in cands)  # never more rows than exist


def _softmax_backend():
    x = torch.randn(6, 40)
    compiled = compile_graph(fx.symbolic_trace(lambda x: torch.softmax(x, -1)), [x], target="triton")
    (k,) = compiled.kernels
    return compiled, k, x


def test_interpreter_uses_the_first_config_and_never_times():
    compiled, k, x = _softmax_backend()
    launcher = compiled.backend.launchers[k.name]
    before = AutotuneStats.timed
    compiled.call(x)
    assert not launcher.autotune and list(launcher.chosen.values()) == [compiled.backend.configs[k.name][0]]
    assert AutotuneStats.timed == before


class FakeBench:
    """Times by config (the second candidate is fastest); really launches, so outputs are computed."""

    def __init__(self, configs_):
        self.configs, self.calls = configs_, []

    def __call__(self, launch):
        launch()
        cfg = launch.__defaults__[0]
        self.calls.append(cfg)
        return 1.0 if cfg == self.configs[1] else 2.0 + self.configs.index(cfg)


def test_autotune_times_each_config_once_and_caches_the_choice_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    compiled, k, x = _softmax_backend()
    cands = compiled.backend.configs[k.name]
    assert len(cands) == 2
    fn, source = compiled.backend.launchers[k.name].fn, compiled.backend.kernel_sources[k.name]
    bench = FakeBench(cands)
    launcher = KernelLauncher(fn, source, cands, autotune=True, device="fake-gpu", benchmark=bench)
    out = torch.empty_like(x)
    launcher(x, out, xnumel=6, rnumel=40)
    assert bench.calls == cands and launcher.chosen[(6, 40)] == cands[1]
    torch.testing.assert_close(out, torch.softmax(x, -1))
    (entry,) = (tmp_path / "triton" / "autotune").iterdir()
    assert json.loads(entry.read_text())["config"] == cands[1].kwargs()

    launcher(x, out, xnumel=6, rnumel=40)  # same sizes: no timing
    assert len(bench.calls) == len(cands)
    hits = AutotuneStats.cache_hits
    again = KernelLauncher(fn, source, cands, autotune=True, device="fake-gpu", benchmark=FakeBench(cands))
    out2 = torch.empty_like(x)
    again(x, out2, xnumel=6, rnumel=40)  # a new process would find the file
    assert again.benchmark.calls == [] and again.chosen[(6, 40)] == cands[1] and AutotuneStats.cache_hits == hits + 1
    torch.testing.assert_close(out2, out)

    other_gpu = KernelLauncher(fn, source, cands, autotune=True, device="other-gpu", benchmark=FakeBench(cands))
    other_gpu(x, out2, xnumel=6, rnumel=40)
    assert len(other_gpu.benchmark.calls) == len(cands)  # the key covers the device

    entry.write_text("{not json")  # a torn or corrupt entry is re-timed, never trusted
    broken = KernelLauncher(fn, source, cands, autotune=True, device="fake-gpu", benchmark=FakeBench(cands))
    broken(x, out2, xnumel=6, rnumel=40)
    assert len(broken.benchmark.calls) == len(cands) and json.loads(entry.read_text())["config"] == cands[1].kwargs()


def test_autotune_skips_configs_that_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    compiled, k, x = _softmax_backend()
    cands = compiled.backend.configs[k.name]

    def bench(launch):
        if launch.__defaults__[0] == cands[0]:
            raise RuntimeError("out of resources")
        launch()
        return 1.0

    launcher = KernelLauncher(compiled.backend.launchers[k.name].fn, "src", cands, autotune=True, benchmark=bench)
    out = torch.empty_like(x)
    launcher(x, out, xnumel=6, rnumel=40)
    assert launcher.chosen[(6, 40)] == cands[1]
    torch.testing.assert_close(out, torch.softmax(x, -1))


def test_cuda_inputs_select_triton(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    monkeypatch.setattr(config, "target", None)
    with FakeTensorMode(allow_non_fake_inputs=True):
        on_gpu = torch.empty(2, device="cuda")
    assert on_gpu.is_cuda
    assert _pick_target(None, [torch.empty(2), on_gpu]) == "triton"
    assert _pick_target(None, [torch.empty(2), 3]) == "cpp"
    assert _pick_target("cpp", [on_gpu]) == "cpp"
    monkeypatch.setattr(config, "target", "triton")
    assert _pick_target(None, [torch.empty(2)]) == "triton"


def test_dumped_kernel_runs_standalone_and_computes_the_kernel(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "dump_dir", str(tmp_path / "d"))  # what `kiln dump` sets
    x, w, b = torch.randn(10, 48), torch.randn(48), torch.randn(48)
    compiled = compile_graph(fx.symbolic_trace(lambda x, w, b: F.layer_norm(x, (48,), w, b)), [x, w, b],
                             target="triton")
    kernel_file = compiled.dump_dir / "5_kernel0.py"
    text = kernel_file.read_text()
    assert "@triton.jit" in text and 'if __name__ == "__main__":' in text and "# persistent reduction" in text

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the file decides by itself
    run = subprocess.run([sys.executable, str(kernel_file)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "Triton interpreter" in run.stdout

    # Its harness builds the recorded arguments: launching on them computes layer_norm.
    spec = importlib.util.spec_from_file_location("dumped_kernel0", kernel_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # TRITON_INTERPRET=1 here (tests/conftest.py)
    args = dict(zip(module.ARGS, module.make_args("cpu")))
    module.launch(list(args.values()))
    (x, w, b), (out,) = [[args[n] for n in module.ARGS if module.ARGS[n][3] == written] for written in (False, True)]
    torch.testing.assert_close(out, F.layer_norm(x, (48,), w, b))
    (out_name,) = [n for n in module.ARGS if module.ARGS[n][3]]
    assert f"{out_name}: (10, 48) torch.float32 checksum" in run.stdout


@pytest.mark.parametrize("example", ["pointwise_softmax.py", "mlp_block.py"])
def test_examples_with_target_triton(example, monkeypatch, capsys):
    monkeypatch.setattr(config, "target", "triton")
    monkeypatch.setattr(config, "strict", True)  # a compile failure raises instead of running eagerly
    before = len(capture.compiled_records())
    runpy.run_path(str(ROOT / "examples" / example), run_name="__main__")
    assert "matches eager" in capsys.readouterr().out
    new = capture.compiled_records()[before:]
    assert new and all(r.reason is None for r in new)  # compiled, not run eagerly


def test_autotune_cache_dir_follows_kiln_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    assert autotune.cache_dir() == tmp_path / "triton"


def _bench(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "KILN_TARGET")}
    return subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_bench.py"), *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_gpu_bench_smoke_runs_the_whole_script_under_the_interpreter():
    out = _bench("--smoke", "--only", "softmax", "--only", "reductions", "--markdown")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith(("| softmax", "| reductions"))]
    assert len(rows) == 2 and not any("FAILED" in r for r in rows), out.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the real benchmark")
def test_gpu_bench_without_cuda_says_so_and_exits_0():
    out = _bench()
    assert out.returncode == 0 and "CUDA is not available" in out.stdout
