"""How a graph's C++ is built fast (codegen/cpp/build.py, render.py): kernels a repeated layer
shares are built once, the prelude is precompiled once per flags and compiler, and a large graph
builds as several translation units at once. Every case compares with eager."""
import pytest
import torch
import torch.fx as fx

from kiln import config
from kiln.backend import compile_graph
from kiln.codegen.cpp import build
from kiln.codegen.wrapper import build_wrapper


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder, with the precompiled prelude made from the first build on."""
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    monkeypatch.setattr(build, "PCH_AFTER_LIBRARIES", 0)
    build._prelude_header_cached.cache_clear()
    yield tmp_path / "cpp"
    build._prelude_header_cached.cache_clear()


def test_a_new_cache_builds_without_a_precompiled_prelude(cache, monkeypatch):
    """Making the .gch costs more than one build saves: a cache's first libraries go without it."""
    monkeypatch.setattr(build, "PCH_AFTER_LIBRARIES", 10 ** 6)
    monkeypatch.setattr(build, "UNIT_MIN_CHARS", 500)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 2)
    _compiled(*_layers(3))
    assert build.BuildStats.units == 2 and not list(cache.glob("prelude-*"))


def _layers(n):
    """n identical pre-norm MLP layers with their own weights: n copies of the same kernels."""
    torch.manual_seed(0)
    layers = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.LayerNorm(32), torch.nn.Linear(32, 64), torch.nn.GELU(),
                                                       torch.nn.Linear(64, 32), torch.nn.Tanh()) for _ in range(n)])
    return fx.symbolic_trace(layers).eval(), [torch.randn(4, 8, 32)]


def _compiled(gm, inputs):
    with torch.no_grad():
        compiled = compile_graph(gm, inputs, target="cpp")
        torch.testing.assert_close(compiled.call(*inputs), gm(*inputs))
    return compiled


def test_repeated_layers_share_their_kernels(cache):
    compiled = _compiled(*_layers(4))
    backend = compiled.backend
    distinct = set(backend.same_as.values())
    assert len(backend.same_as) >= 4 * len(distinct) // 2 and len(distinct) < len(backend.same_as), backend.same_as
    assert "the code of" in backend.source  # the dump says which kernel runs which code
    for name, runs in backend.same_as.items():
        assert (f'void {name}(' in backend.source) == (name == runs)


def test_kernels_that_differ_only_in_a_constant_are_not_shared(cache):
    def f(x):
        return (x * 2.0).exp(), (x * 3.0).exp()

    compiled = _compiled(fx.symbolic_trace(f), [torch.randn(64, 33)])
    assert len(set(compiled.backend.same_as.values())) == len(compiled.backend.same_as)


def test_large_graph_builds_as_several_units(cache, monkeypatch):
    monkeypatch.setattr(build.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(build, "UNIT_MIN_CHARS", 500)
    gm, inputs = _layers(3)
    gm.graph.lint()
    _compiled(gm, inputs)
    assert build.BuildStats.units == 2
    assert list(cache.glob("prelude-*.h.gch")), "the prelude was not precompiled"
    assert not list(cache.glob("*.unit*")), "unit sources and objects are removed"


def test_index_errors_are_seen_from_every_unit(cache, monkeypatch):
    """The error flag is one per library: a kernel of the second unit sets the flag the first reads."""
    monkeypatch.setattr(build.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(build, "UNIT_MIN_CHARS", 1)

    def f(x, i, j):
        return (x.exp() + 1)[i].sin(), x.cos()[j] * 2, x.tanh().sum(0)

    good = [torch.randn(6, 5), torch.tensor([0, 5, 2]), torch.tensor([1, 3])]
    with torch.no_grad():
        compiled = compile_graph(fx.symbolic_trace(f), good, target="cpp")
    assert build.BuildStats.units >= 2 and compiled.backend.checks_indices
    call, _ = build_wrapper(compiled.graph, compiled.steps, compiled.backend)
    for bad in ([good[0], good[1], torch.tensor([1, 9])], [good[0], torch.tensor([0, 6, 2]), good[2]]):
        with pytest.raises(IndexError, match="compiled Kiln kernel"):
            call(*bad)
        torch.testing.assert_close(call(*good)[0], f(*good)[0])  # the flag was cleared


def test_damaged_precompiled_prelude_still_builds(cache, monkeypatch):
    monkeypatch.setattr(build, "UNIT_MIN_CHARS", 1)
    _compiled(*_layers(1))
    (gch,) = cache.glob("prelude-*.h.gch")
    gch.write_bytes(gch.read_bytes()[: gch.stat().st_size // 3])  # truncated: g++ stops on it
    build._prelude_header_cached.cache_clear()
    gm, inputs = _layers(2)
    _compiled(gm, inputs)  # built as one plain unit instead, and the header is rebuilt next time
    assert build.BuildStats.units == 1
    assert not list(cache.glob("prelude-*.ok"))
