"""Pointwise entries of the op table: unary math, binary ops with broadcasting and type
promotion, ops with Python scalars (int division, pow, division by signed zero), casts."""
from __future__ import annotations

import torch

from .ops import OpSpec, table
from .values import FLOATS


def other(rule="any"):
    """A second tensor operand that broadcasts with `a` (an existing value or a new input)."""
    return lambda g, a: {"b": g.partner(a, rule)}


def scalar(rule="any"):
    """A Python number: a constant (specials included) or a number read from a tensor earlier."""
    return lambda g, a: {"c": g.scalar(rule)}


def where(g, a):
    return {"m": g.partner(a, "bool"), "b": g.partner(a, "any")}


def clamp(g, a):
    lo, hi = sorted((g.scalar("num", tensors=False), g.scalar("num", tensors=False)), key=_order)
    return {"lo": lo, "hi": hi} if g.rng.random() < 0.9 else {"lo": hi, "hi": lo}  # lo > hi: eager's rule


def _order(v):
    return float("-inf") if v != v else v


def rounding(g, a):
    return {"b": g.partner(a, "num"), "mode": g.rng.choice(("trunc", "floor"))}


def cast(g, a):
    """Any dtype to any other; float to integer only after clamping (out-of-range casts are undefined)."""
    to = g.dtype("any")
    if str(a.dtype).removeprefix("torch.") in FLOATS and not to.is_floating_point and to != torch.bool:
        return None  # cast_float_int does it safely
    return {"dtype": to}


def cast_float_int(g, a):
    return {"dtype": g.dtype("int")}


def round_decimals(g, a):
    return {"n": g.rng.choice((0, 1, 2, -1))}


def nan_to_num(g, a):
    return {"nan": g.rng.choice((0.0, 1.5)), "pos": g.rng.choice((None, 100.0)), "neg": g.rng.choice((None, -7.0))}


def shift(g, a):
    return {"b": g.partner(a, "int")}


def unary(name, template, dtypes="any", weight=1.0):
    return OpSpec(name, template, "pointwise", dtypes, weight=weight)


def binary(name, template, dtypes="any", partner="any", weight=1.0, family="pointwise"):
    return OpSpec(name, template, family, dtypes, other(partner), weight=weight)


def with_scalar(name, template, dtypes="any", rule="any", weight=1.0, family="scalar"):
    return OpSpec(name, template, family, dtypes, scalar(rule), weight=weight)


def division(name, template, dtypes="num", partner="num", weight=1.0):
    """Division, remainder and pow: their own family, so integer division by zero, INT_MIN // -1,
    negative integer powers and signed-zero divisors come up often."""
    return binary(name, template, dtypes, partner, weight, "division")


def division_s(name, template, dtypes="num", rule="num", weight=1.0):
    return with_scalar(name, template, dtypes, rule, weight, "division")


POINTWISE = table(
    # unary math; integer and bool operands promote to the default float dtype
    *(unary(f, f"torch.{f}({{a}})") for f in (
        "sin", "cos", "tan", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
        "sigmoid", "tanh", "erf", "erfc", "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh",
        "reciprocal")),
    unary("lgamma", "torch.lgamma({a})", "float", weight=0.3),
    unary("gelu", "torch.nn.functional.gelu({a})", "float"),
    unary("gelu_tanh", "torch.nn.functional.gelu({a}, approximate='tanh')", "float", weight=0.5),
    unary("silu", "torch.nn.functional.silu({a})", "float"),
    unary("softplus", "torch.nn.functional.softplus({a})", "float", weight=0.5),
    # unary, keeping the dtype
    unary("neg", "-{a}", "num", weight=2),
    unary("abs", "torch.abs({a})", "num", weight=2),
    unary("sign", "torch.sign({a})", "any"),
    unary("sgn", "{a}.sgn()", "num", weight=0.5),
    unary("square", "torch.square({a})", "num"),
    unary("relu", "torch.relu({a})", "num", weight=2),
    unary("floor", "torch.floor({a})", "num"),
    unary("ceil", "torch.ceil({a})", "num"),
    unary("round", "torch.round({a})", "num"),
    OpSpec("round_decimals", "torch.round({a}, decimals={n})", "pointwise", "float", round_decimals, weight=0.5),
    unary("trunc", "torch.trunc({a})", "num"),
    unary("frac", "torch.frac({a})", "float"),
    unary("bitwise_not", "~{a}", "intbool"),
    unary("logical_not", "torch.logical_not({a})"),
    unary("isnan", "torch.isnan({a})"),
    unary("isinf", "torch.isinf({a})"),
    unary("isfinite", "torch.isfinite({a})"),
    unary("signbit", "torch.signbit({a})", "num"),
    OpSpec("nan_to_num", "torch.nan_to_num({a}, nan={nan}, posinf={pos}, neginf={neg})", "pointwise", "float",
           nan_to_num),
    OpSpec("clamp", "torch.clamp({a}, {lo}, {hi})", "pointwise", "num", clamp),
    # binary, broadcasting, with type promotion between the operands' dtypes
    binary("add", "{a} + {b}", weight=3),
    binary("sub", "{a} - {b}", "num", "num", weight=2),
    binary("mul", "{a} * {b}", weight=3),
    division("div", "{a} / {b}", "any", "any", weight=2),
    division("floordiv", "{a} // {b}", weight=2),
    division("remainder", "{a} % {b}", weight=2),
    division("fmod", "torch.fmod({a}, {b})"),
    OpSpec("div_mode", "torch.div({a}, {b}, rounding_mode={mode})", "division", "num", rounding),
    division("pow", "{a} ** {b}", weight=1.5),
    binary("maximum", "torch.maximum({a}, {b})", weight=1.5),
    binary("minimum", "torch.minimum({a}, {b})"),
    binary("atan2", "torch.atan2({a}, {b})", "num", "num", weight=0.5),
    binary("hypot", "torch.hypot({a}, {b})", "float", "float", weight=0.3),
    binary("copysign", "torch.copysign({a}, {b})", "num", "num", weight=0.5),
    binary("and", "{a} & {b}", "intbool", "intbool"),
    binary("or", "{a} | {b}", "intbool", "intbool"),
    binary("xor", "{a} ^ {b}", "intbool", "intbool"),
    OpSpec("lshift", "{a} << {b}", "pointwise", "int", shift, weight=0.5),
    OpSpec("rshift", "{a} >> {b}", "pointwise", "int", shift, weight=0.5),
    binary("logical_and", "torch.logical_and({a}, {b})", weight=0.5),
    binary("logical_or", "torch.logical_or({a}, {b})", weight=0.5),
    binary("eq", "{a} == {b}"),
    binary("ne", "{a} != {b}", weight=0.5),
    binary("lt", "{a} < {b}"),
    binary("le", "{a} <= {b}", weight=0.5),
    binary("gt", "{a} > {b}", weight=0.5),
    binary("ge", "{a} >= {b}", weight=0.5),
    OpSpec("where", "torch.where({m}, {a}, {b})", "pointwise", "any", where, weight=2),
    # with a Python scalar (constants include inf, nan, -0.0, 0)
    with_scalar("add_s", "{a} + {c}", weight=2),
    with_scalar("sub_s", "{a} - {c}", "num", "num"),
    with_scalar("rsub_s", "{c} - {a}", "num", "num"),
    with_scalar("mul_s", "{a} * {c}", weight=2),
    division_s("div_s", "{a} / {c}", "any", "any", weight=2),
    division_s("rdiv_s", "{c} / {a}", "any", "any"),
    division_s("floordiv_s", "{a} // {c}", weight=2),
    division_s("remainder_s", "{a} % {c}", weight=2),
    division_s("pow_s", "{a} ** {c}", weight=1.5),
    division_s("rpow_s", "({c}) ** {a}"),
    with_scalar("gt_s", "{a} > {c}", "num", "num"),
    with_scalar("eq_s", "{a} == {c}", weight=0.5),
    with_scalar("and_s", "{a} & {c}", "intbool", "intbool", weight=0.5),
    with_scalar("clamp_min_s", "torch.clamp({a}, min={c})", "num", "num", weight=0.5),
    # casts
    OpSpec("cast", "{a}.to({dtype})", "cast", "any", cast, weight=3),
    OpSpec("cast_float_int", "torch.nan_to_num({a}.clamp(-1e4, 1e4)).to({dtype})", "cast", "float", cast_float_int),
)
