"""torch.compile(..., backend="kiln", mode=..., options={...}): the keywords torch.compile passes a
backend are accepted; Kiln's own option (`target`) is honoured, the others are ignored with one
warning each, and a mode that torch.compile does not have is an error at once."""
import warnings

import pytest
import torch

from kiln import compile_options, records
from kiln.backend import KilnCompileWarning

pytestmark = pytest.mark.usefixtures("fresh")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(compile_options, "_warned", set())


def _kiln_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, KilnCompileWarning)]


def f(x):
    return (x.sin() * 2 + 1).relu()


@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
def test_every_mode_compiles(mode):
    compiled = torch.compile(f, backend="kiln", mode=mode)
    x = torch.randn(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.testing.assert_close(compiled(x), f(x))
        torch.testing.assert_close(compiled(x + 1), f(x + 1))
    messages = _kiln_warnings(caught)
    assert len(messages) == (0 if mode == "default" else 1)
    assert all(f"mode={mode!r}" in m for m in messages)
    assert all(r.compiled for r in records.backend_records())


def test_unknown_options_warn_once_and_compile():
    x = torch.randn(8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fn in (f, lambda x: x.cos() - 1):
            compiled = torch.compile(fn, backend="kiln", options={"max_autotune": True, "triton.cudagraphs": False})
            torch.testing.assert_close(compiled(x), fn(x))
    messages = _kiln_warnings(caught)
    assert len(messages) == 2 and "'max_autotune'" in messages[0] and "'triton.cudagraphs'" in messages[1]
    assert caught[0].filename == __file__  # the warning points at the user's line
    assert all(r.compiled for r in records.backend_records())


def test_target_option_is_honoured(monkeypatch):
    chosen = []
    import kiln.backend as backend
    real = backend._compile_fx
    monkeypatch.setattr(backend, "_compile_fx", lambda gm, inputs, eager, target: chosen.append(target) or real(
        gm, inputs, eager, target))
    compiled = torch.compile(f, backend="kiln", options={"target": "cpp"})
    x = torch.randn(8)
    torch.testing.assert_close(compiled(x), f(x))
    assert chosen == ["cpp"]


@pytest.mark.parametrize("kwargs", [{"mode": "fastest"}, {"options": {"target": "cuda"}}])
def test_a_value_kiln_cannot_have_raises(kwargs):
    compiled = torch.compile(f, backend="kiln", **kwargs)
    with pytest.raises(Exception, match="expected one of"):
        compiled(torch.randn(4))
