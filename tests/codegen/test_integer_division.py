"""Integer division and remainder, through the C++ build and Triton (interpreter on CPU).

Eager raises RuntimeError('ZeroDivisionError') on an integer zero divisor. A kernel cannot raise
(and x86's idiv would kill the process): the divisor goes through CHECK_DIVISOR, which flags the
kernel's error and divides by 1, and the wrapper then reruns the graph eagerly, which raises
eager's own error. INT_MIN // -1 wraps to INT_MIN and INT_MIN % -1 is 0, as in eager (idiv traps
on both).
"""
import warnings

import pytest
import torch
import torch.fx as fx

from kiln.backend import KilnCompileWarning, compile_graph
from kiln.codegen.wrapper import build_wrapper
from kiln.inductor.ir import loop as L
from kiln.inductor.ir.loop import LoopOp
from kiln_testing import check

T = torch.tensor
TARGETS = ["cpp", "triton"]
INT_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]


def _compile(fn, inputs, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        return compile_graph(fx.symbolic_trace(fn), [t.clone() for t in inputs], target=target)


def _raises_like_eager(call, fn, inputs):
    with pytest.raises(Exception) as eager:
        fn(*[t.clone() for t in inputs])
    with pytest.raises(Exception) as got:
        call(*[t.clone() for t in inputs])
    assert type(got.value) is type(eager.value) and str(got.value) == str(eager.value)


def floor_div(a, b):
    return a // b


def remainder(a, b):
    return a % b


def fmod(a, b):
    return torch.fmod(a, b)


def trunc_div(a, b):
    return torch.div(a, b, rounding_mode="trunc")


def floor_div_mode(a, b):
    return torch.div(a, b, rounding_mode="floor")


def scalar_floor_div(a, b):
    return a // 0 + b


def scalar_remainder(a, b):
    return torch.remainder(a, 0) + b


def reflected_remainder(a, b):
    return 7 % b + a


def division_then_sum(a, b):
    return (a // b).sum(0)


def broadcast_remainder(a, b):
    return a.unsqueeze(1) % b


OPS = [floor_div, remainder, fmod, trunc_div, floor_div_mode, reflected_remainder, division_then_sum,
       broadcast_remainder]


def _operands(dtype, zero_at=None):
    low = 0 if dtype == torch.uint8 else -9
    g = torch.Generator().manual_seed(0)
    a = torch.randint(low, 10, (64,), generator=g).to(dtype)
    b = torch.randint(1, 10, (64,), generator=g).to(dtype)
    if dtype != torch.uint8:
        b = torch.where(torch.rand(64, generator=g) < 0.5, b, -b)
    if zero_at is not None:
        b[zero_at] = 0
    return a, b


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8], ids=str)
@pytest.mark.parametrize("fn", OPS, ids=lambda f: f.__name__)
def test_zero_divisor_raises_as_eager(fn, dtype, target):
    good = _operands(dtype)
    compiled = _compile(fn, good, target)
    check(compiled.call, fn, *good)
    _raises_like_eager(compiled.call, fn, _operands(dtype, zero_at=37))
    check(compiled.call, fn, *good)  # the flag was cleared: the next call is right again


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fn", [scalar_floor_div, scalar_remainder], ids=lambda f: f.__name__)
def test_zero_constant_divisor_raises_as_eager(fn, target):
    inputs = _operands(torch.int64)
    _raises_like_eager(_compile(fn, inputs, target).call, fn, inputs)


@pytest.mark.parametrize("target", TARGETS)
def test_the_kernel_itself_detects_the_zero_divisor(target):
    """Without an eager graph to defer to, the wrapper raises its own error: so it is a kernel's
    check that found the zero, not an eager run."""
    compiled = _compile(remainder, _operands(torch.int64), target)
    call, _ = build_wrapper(compiled.graph, compiled.steps, compiled.backend)
    with pytest.raises(IndexError, match="compiled Kiln kernel"):
        call(*_operands(torch.int64, zero_at=5))
    a, b = _operands(torch.int64)
    torch.testing.assert_close(call(a, b)[0], a % b, rtol=0, atol=0)


@pytest.mark.parametrize("target", TARGETS)
def test_zero_divisor_of_an_empty_tensor_raises_nothing(target):
    """Eager raises only when it divides an element: x // 0 of an empty x is an empty result."""
    for fn in (scalar_floor_div, scalar_remainder):
        empty = (torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
        check(_compile(fn, empty, target).call, fn, *empty)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_int_min_by_minus_one_wraps_as_eager(dtype, target):
    """INT_MIN // -1 is INT_MIN and INT_MIN % -1 is 0 in eager; x86's idiv raises SIGFPE on both
    (for int32 and int64), which would kill the process."""
    info = torch.iinfo(dtype)
    a = T([info.min, info.min, info.max, info.min + 1, 7, -7, 0, info.min], dtype=dtype)
    b = T([-1, 1, -1, -1, -1, -1, -1, 2], dtype=dtype) if dtype != torch.uint8 else \
        T([255, 1, 255, 3, 2, 1, 9, 2], dtype=dtype)

    def fn(a, b):
        return a // b, a % b, torch.fmod(a, b), torch.div(a, b, rounding_mode="floor"), a // -1, a % -1

    if dtype == torch.uint8:
        fn = lambda a, b: (a // b, a % b, torch.fmod(a, b), torch.div(a, b, rounding_mode="floor"))  # noqa: E731
    check(_compile(fn, (a, b), target).call, fn, a, b)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32], ids=str)
def test_int_min_trunc_division_by_minus_one_wraps(dtype, target):
    """torch.div(INT_MIN, -1, rounding_mode='trunc') kills eager itself with SIGFPE (torch 2.13 on
    x86), so there is no eager value to compare with: Kiln wraps, as for floor division."""
    info = torch.iinfo(dtype)
    a, b = T([info.min, info.min, 9], dtype=dtype), T([-1, 1, -2], dtype=dtype)
    got = _compile(trunc_div, (a, b), target).call(a, b)
    torch.testing.assert_close(got, T([info.min, info.min, -4], dtype=dtype), rtol=0, atol=0)


def test_checks_only_where_a_divisor_can_be_zero():
    """A nonzero constant divisor (x // 4, x % -3) needs no check; a tensor divisor and a zero
    constant do; float division never does (x / 0 is inf, as eager)."""
    def ops_of(fn, *inputs):
        compiled = _compile(fn, inputs, "cpp")
        return [m.op for k in compiled.kernels for n in k.nodes for m in L.walk(n.body)]

    x = T([5, -7, 9])
    assert LoopOp.CHECK_DIVISOR not in ops_of(lambda x: (x // 4, x % -3, torch.fmod(x, 2)), x)
    assert LoopOp.CHECK_DIVISOR in ops_of(lambda x, y: x % y, x, T([1, 2, 3]))
    assert LoopOp.CHECK_DIVISOR not in ops_of(lambda x, y: (x / y, torch.fmod(x, y), x // y), x.float(),
                                              T([1.0, 0.0, 3.0]))


@pytest.mark.parametrize("target", TARGETS)
def test_unused_division_by_zero_is_dropped(target):
    """Decided: an op whose result no output needs is not computed, so its error is not raised
    either (as for out-of-range indices, and as TorchDynamo + Inductor do). Eager raises here."""
    def fn(a, b):
        _ = a % b  # unused
        return a + 1

    a, b = T([7, 8]), T([0, 0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(a, b)
    torch.testing.assert_close(_compile(fn, (a, b), target).call(a, b), a + 1)
