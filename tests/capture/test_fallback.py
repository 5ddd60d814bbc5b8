"""Unsupported constructs: one warning and eager results, or Unsupported under fullgraph."""
import warnings

import pytest
import torch

from kiln import capture
from kiln import config


def helper(t):
    return t * 2


def tensor_in_a_set(x):
    seen = {x}
    return x * len(seen)


def calls_print(x):
    print("value", x.shape)
    return x + 1


def metadata_inplace_method(x):
    x.t_()
    return x * 2


def other_context_manager(x):
    with torch.autograd.profiler.record_function("region"):
        return x + 1


def inference_mode(x):
    with torch.inference_mode():
        return x + 1


def set_requires_grad(x, y):
    y.requires_grad = True
    return x + y


def data_dependent(x):
    return x.sum().item() + 1


UNSUPPORTED = [
    (tensor_in_a_set, "set item", 1),
    (calls_print, "call to builtin print", 1),
    (metadata_inplace_method, "tensor method t_(): changes the tensor's metadata in place", 1),
    (other_context_manager, "context manager torch.autograd.profiler.record_function", 1),
    (inference_mode, "context manager torch.autograd.grad_mode.inference_mode", 1),
    (set_requires_grad, "setting attribute 'requires_grad'", 2),
    (data_dependent, "item", 1),
]


@pytest.mark.parametrize("fn, reason, n_tensors", UNSUPPORTED, ids=lambda v: getattr(v, "__name__", ""))
def test_breaks_or_falls_back_naming_the_construct(fn, reason, n_tensors, counter, capsys):
    """Without fullgraph, each construct either breaks the graph (recorded, no warning) or
    makes a frame run eagerly with one warning; either way the results are eager's."""
    compiled = capture.compile(fn, backend=counter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            args = [torch.randn(2, 3) for _ in range(n_tensors)]
            expected_args = [a.clone() for a in args]
            expected = fn(*expected_args)
            actual = compiled(*args)
            torch.testing.assert_close(actual, expected)
            torch.testing.assert_close(args, expected_args)
    fallback = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    graph_breaks = [str(b) for b in capture.breaks.BREAKS]
    assert len(fallback) <= 1, fallback
    assert graph_breaks or fallback, "neither a graph break nor a fallback"
    messages = "\n".join(graph_breaks + fallback)  # the first break names the construct, or the fallback
    assert reason in messages and f"{__file__}:" in messages


@pytest.mark.parametrize("fn, reason, n_tensors", UNSUPPORTED, ids=lambda v: getattr(v, "__name__", ""))
def test_fullgraph_raises_with_location(fn, reason, n_tensors, counter):
    compiled = capture.compile(fn, backend=counter, fullgraph=True)
    with pytest.raises(capture.Unsupported) as info:
        compiled(*[torch.randn(2, 3) for _ in range(n_tensors)])
    text = str(info.value)
    assert reason in text
    assert info.value.filename == __file__
    assert info.value.lineno > fn.__code__.co_firstlineno
    assert f"{__file__}:{info.value.lineno}" in text
    assert "hint:" in text
    if info.value.hint.startswith(capture.exc.DEFAULT_HINT):  # the way out that fullgraph=True closed
        assert info.value.hint.endswith(capture.exc.FULLGRAPH_HINT)


def test_messages_without_fullgraph_do_not_mention_it():
    assert "fullgraph" not in capture.exc.DEFAULT_HINT and "straight-line" not in capture.exc.DEFAULT_HINT


def helper_printing(t):
    print(t.shape)
    return t * 2


def test_unsupported_inside_inlined_function_names_the_callee(counter):
    def uses_helper(x):
        return helper(x) + helper_printing(x)

    with pytest.raises(capture.Unsupported, match="call to builtin print") as info:
        capture.compile(uses_helper, backend=counter, fullgraph=True)(torch.ones(2))
    assert info.value.filename == __file__
    assert info.value.lineno == helper_printing.__code__.co_firstlineno + 1


def test_user_shape_error_surfaces_from_eager(counter):
    def bad(x, y):
        return x + y

    compiled = capture.compile(bad, backend=counter)
    with pytest.raises(RuntimeError, match="size of tensor"):
        compiled(torch.ones(2), torch.ones(3))
    # not remembered as a fallback: a good call compiles
    torch.testing.assert_close(compiled(torch.ones(2), torch.ones(2)), torch.full((2,), 2.0))
    assert counter.count == 1


def broken_backend(gm, example_inputs):
    raise RuntimeError("backend exploded")


def test_internal_error_falls_back_with_warning(monkeypatch):
    monkeypatch.setattr(config, "strict", False)
    def f(x):
        return x + 1

    compiled = capture.compile(f, backend=broken_backend)
    with pytest.warns(capture.FallbackWarning, match="backend exploded"):
        torch.testing.assert_close(compiled(torch.ones(2)), torch.full((2,), 2.0))


def test_strict_mode_raises_internal_errors(monkeypatch):
    monkeypatch.setattr(config, "strict", True)

    def f(x):
        return x + 1

    with pytest.raises(RuntimeError, match="backend exploded"):
        capture.compile(f, backend=broken_backend)(torch.ones(2))


def test_fallback_is_remembered_per_code_object(counter, monkeypatch):
    calls = []
    original = capture.api._compile_frame

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(capture.api, "_compile_frame", counting)
    compiled = capture.compile(generator_function, backend=counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            assert list(compiled(torch.ones(2))) == [1]
    assert len(calls) == 1


def generator_function(x):  # generator frames always run eagerly
    yield 1
