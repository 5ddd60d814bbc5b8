"""The tracer holds the fake mode for a whole trace; nothing outside the trace sees it: the
backend gets real example inputs outside any dispatch mode, and a trace that stops (an
unsupported construct, a graph break, an error in the user's code) leaves no mode behind."""
import warnings

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from kiln import capture

WEIGHT = torch.randn(4)


def _backend_seeing(seen):
    def backend(gm, example_inputs):
        seen.append((_get_current_dispatch_mode(), [type(x) for x in example_inputs]))
        return gm.forward
    return backend


def test_backend_runs_outside_the_fake_mode_with_real_inputs():
    seen = []

    def fn(x):
        return torch.sin(x) * WEIGHT + torch.ones(4)

    capture.reset()
    x = torch.randn(4)
    out = capture.compile(fn, backend=_backend_seeing(seen), fullgraph=True)(x)
    torch.testing.assert_close(out, fn(x))
    assert seen == [(None, [torch.Tensor, torch.Tensor])]
    assert _get_current_dispatch_mode() is None
    assert type(torch.ones(2)) is torch.Tensor


def test_no_mode_left_after_a_break_or_a_fallback():
    def breaks(x):
        y = x * 2
        print("side effect", end="")  # unsupported: a graph break here
        return y + 1

    def falls_back(x):
        return x.nonzero() + int(x.sum().item())  # data-dependent all the way

    capture.reset()
    x = torch.randn(3)
    for fn in (breaks, falls_back):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = capture.compile(fn, backend="eager")(x)
        torch.testing.assert_close(out, fn(x))
        assert not isinstance(out, FakeTensor)
        assert _get_current_dispatch_mode() is None


def test_no_mode_left_after_an_error_in_the_traced_code():
    def wrong(x):
        return x @ torch.ones(5, 5)  # shapes do not match: the op fails while tracing

    capture.reset()
    with pytest.raises(Exception):
        capture.compile(wrong, backend="eager", fullgraph=True)(torch.randn(3, 4))
    assert _get_current_dispatch_mode() is None
    assert type(torch.ones(2)) is torch.Tensor
