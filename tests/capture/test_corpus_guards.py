"""Corpus: guards and recompiles (tests/capture/corpus/guards.py), plus the guard behaviours
that need more than three calls: module attribute changes, the recompile limit, reset,
grad mode, and the KILN_LOGS output."""
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from kiln import capture, config
from corpus import run_case
from corpus.guards import CASES, Gate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_guards(case):
    run_case(case)


@pytest.fixture
def recompiles(caplog):
    caplog.set_level(logging.DEBUG, logger="kiln.recompiles")
    return caplog


def test_module_attribute_change_recompiles(counter, recompiles):
    model = Gate()
    compiled = capture.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(3, 4)
    torch.testing.assert_close(compiled(x), model(x))
    model.use_relu = False
    torch.testing.assert_close(compiled(x), model(x))
    assert "value 'self.use_relu' value mismatch: expected True, got False" in recompiles.text
    model.eval()  # `use_relu and training` no longer reads training: no guard on it, no recompile
    torch.testing.assert_close(compiled(x), model(x))
    model.scale = 0.25
    torch.testing.assert_close(compiled(x), model(x))
    assert "value 'self.scale' value mismatch: expected 0.5, got 0.25" in recompiles.text
    assert counter.count == 3


def test_module_training_flag_recompiles(counter, recompiles):
    model = Gate()
    compiled = capture.compile(model, backend=counter)
    x = torch.randn(3, 4)
    compiled(x)
    model.eval()
    torch.testing.assert_close(compiled(x), model(x))
    assert "value 'self.training' value mismatch: expected True, got False" in recompiles.text
    model.train()
    compiled(x)
    assert counter.count == 2  # back to the first entry


def test_grad_mode_is_guarded_with_no_grad_inside(counter, recompiles):
    def f(x, w):
        with torch.no_grad():
            a = x * w
        return a, x * w

    compiled = capture.compile(f, backend=counter, fullgraph=True)
    x, w = torch.randn(3), torch.randn(3, requires_grad=True)
    a, b = compiled(x, w)
    assert not a.requires_grad and b.requires_grad
    with torch.no_grad():
        a, b = compiled(x, w)
        assert not a.requires_grad and not b.requires_grad
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert counter.count == 2
    assert "grad mode changed: expected True, got False" in recompiles.text
    nodes = [node.target for node in counter.graphs[0].graph.nodes if node.op == "call_function"]
    assert nodes.count(torch._C._set_grad_enabled) == 2  # off, then back on


LOG = []


def appends_to_global(x):
    LOG.append(x.sum())
    return x * 2


def test_recompile_limit_with_side_effects_stays_correct(counter):
    """Each call grows LOG (a length guard fails); past the limit the function runs eagerly,
    and every call still appends exactly once."""
    config.recompile_limit = 3
    compiled = capture.compile(appends_to_global, backend=counter)
    LOG.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step in range(6):
                torch.testing.assert_close(compiled(torch.full((2,), float(step))), torch.full((2,), 2.0 * step))
        assert [float(value) for value in LOG] == [2.0 * step for step in range(6)]
    finally:
        LOG.clear()
    assert counter.count == 3
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    assert len(fallbacks) == 1 and "recompile limit (3)" in fallbacks[0]
    assert "global 'LOG' length mismatch" in fallbacks[0]


def test_reset_forgets_entries_and_fallbacks(counter):
    def f(x, lst):
        lst.append(x)
        return x + 1

    def g(x):  # a generator function: runs eagerly
        yield x

    compiled_f, compiled_g = capture.compile(f, backend=counter), capture.compile(g, backend=counter)
    compiled_f(torch.ones(2), [])
    with pytest.warns(capture.FallbackWarning):
        list(compiled_g(torch.ones(2)))
    assert len(capture.compiled_records()) == 2
    capture.reset()
    assert capture.compiled_records() == []
    compiled_f(torch.ones(2), [])
    assert counter.count == 2
    with pytest.warns(capture.FallbackWarning):  # the fallback decision was forgotten too
        list(compiled_g(torch.ones(2)))


def test_three_tensor_alias_guards_are_all_kept(counter):
    def f(x, y, z):
        x.add_(1)
        return y + z

    compiled = capture.compile(f, backend=counter)
    a, b, c = torch.zeros(2), torch.zeros(2), torch.zeros(2)
    compiled(a, b, c)
    a2 = torch.zeros(2)
    torch.testing.assert_close(compiled(a2, torch.zeros(2), a2), torch.ones(2))  # x is z now
    assert counter.count == 2


SCRIPT = textwrap.dedent('''
    import torch, kiln

    class Box:
        pass

    @kiln.compile(backend="eager")
    def f(x, box, n):
        with torch.no_grad():
            box.value = x * n
        return x + n

    box = Box()
    f(torch.ones(3), box, 2)
    f(torch.ones(4), box, 2)
    f(torch.ones(4), box, 3)
''')


def test_kiln_logs_guards_and_recompiles_are_readable(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, KILN_LOGS="guards,recompiles,graph")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    text = result.stderr
    assert "[kiln.guards] guards of f" in text
    assert "SIZE             L['x'] (3,)" in text
    assert "CONSTANT_MATCH   L['n'] 2" in text
    assert "TYPE_MATCH       L['box']" in text
    assert "GRAD_MODE        torch.is_grad_enabled() True" in text
    assert "[kiln.recompiles] recompiling f" in text and "tensor 'x' size mismatch at dim 0: expected 3, got 4" in text
    assert "value 'n' value mismatch: expected 2, got 3" in text
    assert "side effects of f, replayed after the graph:\nL['box'].value = graph_out[1]" in text
    assert "torch._C._set_grad_enabled(False)" in text
