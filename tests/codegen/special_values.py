"""Shared pieces of the special-value sweeps (test_special_values.py): the values, the ops, and the
comparison with eager.

Comparison: bit for bit (NaN where eager has NaN, the sign of every zero) where eager's result is
exact (correctly rounded, or integer); elsewhere within a few ulp, but still with eager's
infinities and NaNs, and the sign of a zero computed from a zero or an infinity (tanh(-0.0) is
-0.0; a zero from cancellation, as logaddexp2(-1, -1), has no meaningful sign). Eager's
vectorised and scalar kernels sometimes disagree on special values (fmod(3e38, 0.5): NaN in a
vector, 0 in the scalar tail; x ** 5e-324: the scalar path keeps the double exponent); either is
accepted, so every case also runs eagerly with each element in a full vector and alone.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kiln.prims import PRIMS, Category

INF, NAN = math.inf, math.nan
FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INTS = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]


def specials(dtype) -> list:
    """inf, -inf, NaN, +-0, the dtype's min/max, smallest normal, denormals and some ordinary values."""
    if dtype == torch.bool:
        return [False, True]
    if dtype.is_floating_point:
        fi = torch.finfo(dtype)
        denormal = fi.smallest_normal / 8
        return [0.0, -0.0, INF, -INF, NAN, fi.max, -fi.max, fi.smallest_normal, -fi.smallest_normal, denormal, -denormal,
                1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.7, -0.3, 1e-3, 100.0, 89.0, -104.0]
    ii = torch.iinfo(dtype)
    values = [0, 1, -1, 2, -2, 3, 7, -7, 31, 63, 64, ii.min, ii.min + 1, ii.max, ii.max - 1]
    return sorted({v for v in values if ii.min <= v <= ii.max})


def special_tensor(dtype):
    return torch.tensor(specials(dtype), dtype=dtype)


def pairs(dtype):
    """Every special value against every other: (a, b) of len(specials) ** 2 elements."""
    s = special_tensor(dtype)
    return s.repeat_interleave(len(s)), s.repeat(len(s))


def _prim_ops(category):
    return {name: p.extra["torch_fn"] for name, p in PRIMS.items() if p.category is category and "torch_fn" in p.extra}


# Elementwise ATen ops that decompose into several prims (activations, rounding divisions, ...).
UNARY = {
    **_prim_ops(Category.UNARY),
    "sigmoid": torch.sigmoid, "relu": torch.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu, "softplus": F.softplus, "elu": F.elu, "mish": F.mish, "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid, "hardtanh": F.hardtanh, "leaky_relu": F.leaky_relu, "logit": torch.logit,
    "frac": torch.frac, "sinc": torch.sinc, "nan_to_num": torch.nan_to_num, "deg2rad": torch.deg2rad,
    "isposinf": torch.isposinf, "isneginf": torch.isneginf, "isfinite": torch.isfinite, "square": torch.square,
    "log_sigmoid": F.logsigmoid, "softsign": F.softsign, "relu6": F.relu6, "selu": F.selu, "celu": F.celu,
}
BINARY = {
    **_prim_ops(Category.BINARY),
    "remainder": torch.remainder, "floor_divide": torch.floor_divide,
    "div_floor": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "div_trunc": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "fmax": torch.fmax, "fmin": torch.fmin, "logaddexp": torch.logaddexp, "logaddexp2": torch.logaddexp2,
    "xlogy": torch.xlogy, "clamp": lambda a, b: torch.clamp(a, min=b), "heaviside": torch.heaviside,
    "where_gt": lambda a, b: torch.where(a > b, a, b), "lerp_half": lambda a, b: torch.lerp(a, b, 0.5),
}
# Integer divisions: eager raises on a zero divisor (tested on their own, test_integer_division.py) and
# torch.div(INT_MIN, -1, rounding_mode="trunc") kills eager itself (SIGFPE): left out of value sweeps.
DIVISIONS = {"trunc_div", "fmod", "remainder", "floor_divide", "div_floor", "div_trunc"}
TRAPS_IN_EAGER = {"trunc_div", "div_trunc"}

# Ops whose eager result is exactly rounded (or exact): compared bit for bit on float inputs.
EXACT = {
    "abs", "neg", "sqrt", "reciprocal", "floor", "ceil", "trunc", "round", "sign", "logical_not", "isnan", "isinf",
    "signbit", "bitwise_not", "add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
    "logical_and", "logical_or", "trunc_div", "fmod", "copysign", "bitwise_and", "bitwise_or", "bitwise_xor",
    "shift_left", "shift_right", "remainder", "floor_divide", "div_floor", "div_trunc", "fmax", "fmin", "clamp",
    "heaviside", "where_gt", "relu", "hardtanh", "nan_to_num", "frac", "isposinf", "isneginf", "isfinite", "square",
    "relu6",
}

# Python constants for the `op(x, c)` / `op(c, x)` sweeps, by the tensor's kind.
FLOAT_CONSTANTS = [0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 0.5, 2.0, 3.0, -2.5, 1e-3, 3.4028234663852886e38,
                   1.1754943508222875e-38, 1e-45, 5e-324, 1e300, 1.7976931348623157e308]
INT_CONSTANTS = [0, 1, -1, 2, -3, 7, True, False, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 0.5, -0.0, INF, NAN]
# The default (CI) run's constants: the signed zeros, infinities, NaN, float32's max and a denormal.
SAMPLE_FLOAT_CONSTANTS = [0.0, -0.0, INF, -INF, NAN, 0.5, 3.4028234663852886e38, 1e-45]
SAMPLE_INT_CONSTANTS = [0, -1, 7, -2**31, True, -0.0, INF, NAN]

# name: (x op c, c op x or None); each a Python-operator or torch spelling with a Scalar overload.
CONSTANT_OPS = {
    "add": (lambda x, c: x + c, lambda c, x: c + x),
    "sub": (lambda x, c: x - c, lambda c, x: c - x),
    "mul": (lambda x, c: x * c, lambda c, x: c * x),
    "truediv": (lambda x, c: x / c, lambda c, x: c / x),
    "floordiv": (lambda x, c: x // c, lambda c, x: c // x),
    "mod": (lambda x, c: x % c, lambda c, x: c % x),
    "pow": (lambda x, c: x ** c, lambda c, x: c ** x),
    "lt": (lambda x, c: x < c, lambda c, x: c < x),
    "le": (lambda x, c: x <= c, lambda c, x: c <= x),
    "eq": (lambda x, c: x == c, None),
    "ne": (lambda x, c: x != c, None),
    "fmod": (lambda x, c: torch.fmod(x, c), None),
    "remainder": (lambda x, c: torch.remainder(x, c), lambda c, x: torch.remainder(c, x)),
    "copysign": (lambda x, c: torch.copysign(x, c), None),
    "clamp_min": (lambda x, c: torch.clamp(x, min=c), None),
    "clamp_max": (lambda x, c: torch.clamp(x, max=c), None),
    "where": (lambda x, c: torch.where(x > 0, x, c), lambda c, x: torch.where(x > 0, c, x)),
    "full_like": (lambda x, c: torch.full_like(x, c), None),
    "xlogy": (lambda x, c: torch.xlogy(x, c), lambda c, x: torch.xlogy(c, x)),
    "and": (lambda x, c: x & c, lambda c, x: c & x),
    "xor": (lambda x, c: x ^ c, None),
    "lshift": (lambda x, c: x << c, None),
    "rshift": (lambda x, c: x >> c, None),
}
CONSTANT_EXACT = {"add", "sub", "mul", "truediv", "floordiv", "mod", "lt", "le", "eq", "ne", "fmod", "remainder",
                  "copysign", "clamp_min", "clamp_max", "where", "full_like", "and", "xor", "lshift", "rshift"}


VECTOR = 64  # elements per eager run that keep every element inside a full vector


def _flat(out):
    return tuple(o.reshape(-1) for o in (out if isinstance(out, tuple) else (out,)))


def eager_outputs(fn, inputs):
    """(result of eager's vectorised loops, result of its scalar loops), both flat tuples: each
    element repeated to fill whole vectors, then each element alone."""
    repeated = _flat(fn(*(x.reshape(-1).repeat_interleave(VECTOR) for x in inputs)))
    vectorised = tuple(r[::VECTOR] for r in repeated)
    n = inputs[0].numel()
    per = [_flat(fn(*(x.reshape(-1)[i:i + 1] for x in inputs))) for i in range(n)]
    return vectorised, tuple(torch.cat([p[k] for p in per]) for k in range(len(vectorised)))


def _tolerance(dtype):
    return {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 2e-6, torch.float64: 1e-7}[dtype]


def mismatches(got, expected, exact, inputs=()):
    """Boolean mask of the elements of `got` that do not match `expected` (flat tensors)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape, (got.dtype, got.shape, expected.dtype,
                                                                        expected.shape)
    if not expected.dtype.is_floating_point:
        return got != expected
    g, e = got.double(), expected.double()
    gn, en = g.isnan(), e.isnan()
    bits = (g != e) | (torch.signbit(g) != torch.signbit(e))
    if exact:
        return (gn != en) | (~en & bits)
    signed_input = torch.zeros_like(bits)  # an input element is +-0 or +-inf: the sign of a zero result counts
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
            signed_input |= (x.reshape(-1) == 0) | x.reshape(-1).isinf()
    rtol = _tolerance(expected.dtype)
    infinite = g.isinf() | e.isinf()
    zeros = (g == 0) & (e == 0)
    close = (g - e).abs() <= rtol * torch.clamp(e.abs(), min=1.0)
    return (gn != en) | (~en & ((infinite & bits) | (zeros & signed_input & bits) | (~infinite & ~close)))


def describe_mismatches(name, got, expected, inputs, exact, alternative=None) -> str | None:
    got, expected = got.reshape(-1), expected.reshape(-1)
    bad = mismatches(got, expected, exact, inputs)
    if alternative is not None:
        bad &= mismatches(got, alternative.reshape(-1), exact, inputs)
    if not bad.any():
        return None
    rows = []
    for i in bad.nonzero().flatten()[:4].tolist():
        args = ", ".join(repr(x.reshape(-1)[i].item()) if isinstance(x, torch.Tensor) else repr(x) for x in inputs)
        rows.append(f"({args}) -> {got[i].item()!r}, eager {expected[i].item()!r}")
    return f"{name}: {int(bad.sum())} wrong: " + "; ".join(rows)

