"""Fault tests: threads and processes compiling at once, and recompile storms. None may crash,
raise, or return a wrong result."""
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest
import torch
import torch.fx as fx

import kiln
from kiln import config
from kiln.backend import KilnCompileWarning, compile_fx
from kiln.codegen import cache_files


def _in_threads(work, n=4):
    """Run work(i) in n threads started together; re-raise the first error."""
    barrier, errors, results = threading.Barrier(n), [], [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


FIRST_TORCH_COMPILE = textwrap.dedent("""
    import threading, torch
    def f(x):
        return torch.sin(x) * 2 + 1
    barrier, errors = threading.Barrier(4), []
    def work():
        barrier.wait()
        try:
            x = torch.randn(5)
            torch.testing.assert_close(torch.compile(f, backend="kiln")(x), f(x))
        except BaseException as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(errors)
""")


def test_four_threads_make_the_processs_first_torch_compile():
    """TorchDynamo loads the `kiln` entry point in each thread that saw it unregistered; all but
    one used to fail with AssertionError('duplicate name: kiln'). Kiln is not imported beforehand."""
    out = subprocess.run([sys.executable, "-c", FIRST_TORCH_COMPILE], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_registering_kiln_again_is_a_no_op_and_other_duplicates_still_assert():
    from torch._dynamo.backends import registry

    assert torch._dynamo.lookup_backend("kiln") is compile_fx  # loads the entry point: installs the check
    registry.register_backend(compile_fx, name="kiln")  # what a thread that lost the race does
    assert registry._COMPILER_FNS["kiln"] is compile_fx and "kiln" in registry._COMPILER_FNS
    with pytest.raises(AssertionError, match="duplicate name: kiln"):
        registry.register_backend(lambda gm, inputs: gm.forward, name="kiln")


SAME_GRAPH = textwrap.dedent("""
    import torch, torch.fx as fx
    from kiln.backend import compile_graph
    from kiln.codegen.cpp import build
    fn = lambda x, y: torch.softmax(x @ y * 0.5, -1).sum(0) + y.amax(0)
    x, y = torch.randn(6, 5), torch.randn(5, 5)
    for target in ("cpp", "triton"):
        c = compile_graph(fx.symbolic_trace(fn), [x, y], target=target)
        torch.testing.assert_close(c.call(x, y), fn(x, y))
    print(build.BuildStats.builds)
""")


def test_two_processes_compile_the_same_graph_at_once(tmp_path):
    env = {**os.environ, "KILN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", SAME_GRAPH], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    builds = [int(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sum(builds) == 1  # one built it under the entry's lock; the other found it built
    assert [p.name for p in (tmp_path / "cpp").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("target", ["cpp", "triton"])
def test_four_threads_compile_the_same_graph(target, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    monkeypatch.setattr(cache_files, "_private", {})
    fn = lambda x: torch.log_softmax(x * 1.5, -1) - x.mean()  # noqa: E731

    graphs = [fx.symbolic_trace(fn) for _ in range(4)]  # fx's tracer itself is not thread-safe

    def work(i):
        x = torch.randn(4, 9)
        call = compile_fx(graphs[i], [x], target=target)
        torch.testing.assert_close(call(x), fn(x))

    with warnings.catch_warnings(record=True) as caught:  # warning filters are per process, not per thread
        warnings.simplefilter("always")
        _in_threads(work)
    assert not [str(w.message) for w in caught if issubclass(w.category, KilnCompileWarning)]  # no fallback


def test_four_threads_capture_the_same_function():
    def f(x, y):
        return torch.relu(x @ y) + y.sum()

    compiled = kiln.compile(f)

    def work(i):
        x, y = torch.randn(3, 4), torch.randn(4, 4)
        torch.testing.assert_close(compiled(x, y), f(x, y))

    _in_threads(work)


def test_recompile_storm():
    """Shapes and dtypes changing on every call, from four threads, past the recompile limit: each
    call is compiled or run eagerly, and always right."""
    def f(x, n):
        return (x * n).cumsum(0) - x.amax()

    compiled = kiln.compile(f)
    dtypes = [torch.float32, torch.float64, torch.int64, torch.int32]

    def work(i):
        for k in range(6):
            x = (torch.arange(1 + i * 6 + k, dtype=torch.float64) * 0.37 - 1).to(dtypes[(i + k) % 4])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the recompile limit makes the function run eagerly
                got = compiled(x, k)
            expected = f(x, k)
            assert got.dtype == expected.dtype
            torch.testing.assert_close(got, expected)

    _in_threads(work)


def test_torch_compile_recompile_storm():
    torch._dynamo.reset()

    def f(x):
        return torch.softmax(x, -1) * x.shape[0]

    compiled = torch.compile(f, backend="kiln", dynamic=False)

    def work(i):
        for k in range(3):
            x = torch.randn(1 + i + k * 4, 3 + k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.testing.assert_close(compiled(x), f(x))

    _in_threads(work)
