"""Python constants keep their exact value through both entry points and both code generators:
constants equal under `==` (0.0 and -0.0; a NaN and another NaN) are never merged into one."""
import math
import warnings

import pytest
import torch

import kiln
from kiln import config
from kiln.backend import KilnCompileWarning

TARGETS = ["cpp", "triton"]


def divide_by_signed_zeros(x):
    return x / 0.0, x / -0.0


def divide_by_signed_zeros_other_order(x):
    return x / -0.0, x / 0.0


def signed_zeros_everywhere(x):
    return x * 0.0, x * -0.0, x + -0.0, torch.full_like(x, -0.0), torch.full_like(x, 0.0), torch.copysign(x, -0.0)


def equal_but_different_constants(x):
    return x * 1.0 + 0.0, x * 1.0 + -0.0, torch.where(x > 0, 0.0, -0.0), torch.where(x > 0, -0.0, 0.0)


def nans_and_infinities(x):
    return x + math.nan, x * math.inf, x * -math.inf, x / math.inf, x / -math.inf, torch.maximum(x, x * math.nan)


def negated_constants(x):
    """A negated constant must not render as `--inf` (a C++ decrement) or `--1.0`."""
    return -torch.full_like(x, -math.inf), -torch.full_like(x, -1.0), -(-x), -torch.full_like(x, math.inf) * x


CASES = [divide_by_signed_zeros, divide_by_signed_zeros_other_order, signed_zeros_everywhere,
         equal_but_different_constants, nans_and_infinities, negated_constants]


def _same_bits(got, expected):
    """Equal values, the same sign of every zero, NaN where eager has NaN."""
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(torch.signbit(g) | g.isnan(), torch.signbit(e) | e.isnan()), (g, e)


def _x():
    return torch.tensor([1.0, -2.0, 0.0, -0.0, math.inf, -math.inf, math.nan, 3.5e-42])


@pytest.fixture
def target(request, monkeypatch):
    monkeypatch.setattr(config, "target", request.param)
    return request.param


@pytest.mark.parametrize("target", TARGETS, indirect=True)
@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_kiln_compile_keeps_each_constant(fn, target):
    kiln.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        warnings.simplefilter("error", kiln.FallbackWarning)
        _same_bits(kiln.compile(fn, fullgraph=True)(_x()), fn(_x()))


@pytest.mark.parametrize("target", TARGETS, indirect=True)
@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_torch_compile_keeps_each_constant(fn, target):
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        _same_bits(torch.compile(fn, backend="kiln", fullgraph=True)(_x()), fn(_x()))


def test_issue_row_as_reported():
    """`return x / 0.0, x / -0.0` on [1.0, -2.0]: eager gives [inf, -inf], [-inf, inf]."""
    kiln.reset()
    x = torch.tensor([1.0, -2.0])
    a, b = kiln.compile(divide_by_signed_zeros)(x)
    assert a.tolist() == [math.inf, -math.inf] and b.tolist() == [-math.inf, math.inf]
