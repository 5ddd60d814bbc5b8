"""Scalar lifting end to end: a Python float that varies between calls (an argument, or an `.item()`
value carried across a graph break) becomes a 0-dim float64 graph input, and Kiln's kernels read it
(prims/lifted_scalars.py), so new values neither recompile nor rebuild. Both entry points; outputs,
gradients and compile counts checked against eager, with special values among the floats."""
import math

import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln import records

pytestmark = pytest.mark.usefixtures("strict")

ENTRY_POINTS = ["kiln", "dynamo"]
VALUES = [2.5, -1.25, 0.0, 1e-30, -3e5, 0.1]


def _compile(entry, fn, **kwargs):
    return kiln.compile(fn, **kwargs) if entry == "kiln" else torch.compile(fn, backend="kiln", **kwargs)


def _builds():
    """Back-end compiles so far, and how many of them compiled per value or split the graph."""
    rs = records.backend_records()
    return len(rs), sum(r.per_size or r.split or not r.compiled for r in rs)


# functions of a tensor and a float: each use of the float keeps it a tensor in the kernels
USES = {
    "arithmetic": lambda x, s: (x * s + 1) / (s - 7.0) - s,
    "python_arithmetic": lambda x, s: x * ((s * 2 - 1) / 3) + (-s),
    "clamp": lambda x, s: x.clamp(min=s) + x.clamp(max=s) + torch.clamp(x, -abs(s) - 1, s + 1),
    "where": lambda x, s: torch.where(x > 0, x, s) + torch.where(x > 0, s, x),
    "pow": lambda x, s: x.abs() ** s + s ** x.clamp(-2, 2),
    "compare": lambda x, s: (x > s).float() + (x <= s).float() + (x == s).float(),
    "masked_fill": lambda x, s: x.masked_fill(x < 0, s),
    "alpha": lambda x, s: torch.add(x, x.sin(), alpha=s) + torch.sub(x, x.cos(), alpha=s),
    "lerp": lambda x, s: torch.lerp(x, x.exp(), s),
    "rsub": lambda x, s: s - x + torch.rsub(x, x.sin(), alpha=s),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("use", sorted(USES))
def test_a_varying_float_compiles_twice(entry, use):
    fn = USES[use]
    compiled = _compile(entry, fn)
    x = torch.randn(37)
    x[0], x[1], x[2] = 0.0, float("inf"), -float("inf")
    for s in VALUES:  # (errors of terms scaled by s are |s| times larger)
        torch.testing.assert_close(compiled(x, s), fn(x, s), equal_nan=True, rtol=1.3e-6, atol=1e-5 * max(1, abs(s)))
    assert _builds() == (2, 0)  # the first value, then one graph with the float lifted


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool])
def test_lifted_float_promotes_as_a_python_number(entry, dtype):
    def fn(x, s):
        return x * s, x + s, torch.where(x.bool(), x, s)
    compiled = _compile(entry, fn)
    x = torch.randn(5, 3).mul(4).to(dtype)
    for s in [0.3, 1.7, -2.2]:
        got, want = compiled(x, s), fn(x, s)
        assert [g.dtype for g in got] == [w.dtype for w in want]
        torch.testing.assert_close(got, want)
    assert _builds() == (2, 0)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("shape", [(), (0,), (0, 4), (1,)])
def test_zero_dim_and_empty_tensors(entry, shape):
    def fn(x, s):
        return (x * s).sin() + s
    compiled = _compile(entry, fn)
    x = torch.randn(shape)
    for s in [1.5, -0.5, 4.0]:
        torch.testing.assert_close(compiled(x, s), fn(x, s))
    assert _builds() == (2, 0)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_item_across_a_graph_break(entry):
    """`.item()` breaks the graph (as in TorchDynamo); the value the resume function receives is lifted."""
    def fn(x, y):
        s = y.sum().item()
        return (x * s).sin() + s
    compiled = _compile(entry, fn)
    x = torch.randn(16)
    for _ in range(5):
        y = torch.randn(4)
        torch.testing.assert_close(compiled(x, y), fn(x, y))
    builds, per_value = _builds()
    assert per_value == 0 and builds == 3  # the sum; the resume graph at one value, then lifted


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_training_with_a_lifted_float(entry):
    lin = torch.nn.Linear(6, 3)

    def loss_fn(x, scale):
        return ((lin(x) * scale).pow(2).mean() + scale * x.sum()) * scale
    compiled = _compile(entry, loss_fn)
    for scale in [0.5, -1.5, 2.25, 0.0]:
        x = torch.randn(4, 6, requires_grad=True)
        got = compiled(x, scale)
        grads = torch.autograd.grad(got, [x, lin.weight, lin.bias])
        want = loss_fn(x, scale)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(grads, torch.autograd.grad(want, [x, lin.weight, lin.bias]))
    assert _builds() == (2, 0)


# uses that need the value (a float parameter with no Tensor overload, a Python division by the
# float, which raises for 0 where a tensor gives inf): compiled per value, correct
VALUE_USES = {
    "leaky_relu": lambda x, s: F.leaky_relu(x, s),
    "python_division": lambda x, s: x * (1.0 / s),
    "full": lambda x, s: x + torch.full((3,), s),
    "elu": lambda x, s: F.elu(x, alpha=s) * s,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("use", sorted(VALUE_USES))
def test_uses_that_need_the_value_stay_correct(entry, use):
    fn = VALUE_USES[use]
    compiled = _compile(entry, fn)
    x = torch.randn(3)
    for s in [0.5, 0.25, 2.0, 0.5]:
        torch.testing.assert_close(compiled(x, s), fn(x, s))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_inf_and_nan_arguments(entry):
    def fn(x, s):
        return x * s
    compiled = _compile(entry, fn)
    x = torch.randn(4)
    for s in [1.5, 2.5, math.inf, -math.inf, math.nan, 3.5]:
        torch.testing.assert_close(compiled(x, s), fn(x, s), equal_nan=True)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_reads_the_float_as_eager_does(entry, dtype):
    """Eager rounds a number to float16/bfloat16 before add, sub, pow, and reads it unrounded in
    mul, div, lerp: bit for bit the same here."""
    def fn(x, s):
        return x + s, x - s, s - x, x.abs() ** s, x * s, x / s, torch.lerp(x, x * 2, s)
    compiled = _compile(entry, fn)
    x = torch.randn(1000).mul(4).to(dtype)
    for s in [1.7, 0.3, -2.2, 1e-3]:
        for got, want in zip(compiled(x, s), fn(x, s)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert _builds() == (2, 0)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_division_by_a_float_that_becomes_zero_raises_eagers_error(entry, monkeypatch):
    """`1.0 / s` with s == 0 raises ZeroDivisionError in Python: so does the compiled function, with
    no Kiln warning (the program's own error, decided by eager)."""
    import warnings

    from kiln import config
    monkeypatch.setattr(config, "strict", False)

    def fn(x, s):
        return x * (1.0 / s)
    compiled = _compile(entry, fn)
    x = torch.randn(3)
    for s in [1.0, 2.0, 4.0]:
        torch.testing.assert_close(compiled(x, s), fn(x, s))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ZeroDivisionError):
            compiled(x, 0.0)
    assert not [w for w in caught if issubclass(w.category, (kiln.KilnCompileWarning, kiln.FallbackWarning))]
