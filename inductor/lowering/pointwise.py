"""Elementwise, conversion and creation prims -> loaders composed over their inputs."""
from __future__ import annotations

import functools
import math

import torch

from ..ir import loop as L
from ..ir.index import affine
from ..ir.loop import LoopOp
from .registry import lowers
from .value import TensorValue

# prim name -> loop op (unary and binary prims map one to one)
ELEMENTWISE = {
    "abs": LoopOp.ABS, "neg": LoopOp.NEG, "exp": LoopOp.EXP, "log": LoopOp.LOG, "log1p": LoopOp.LOG1P,
    "expm1": LoopOp.EXPM1, "sin": LoopOp.SIN, "cos": LoopOp.COS, "tan": LoopOp.TAN, "tanh": LoopOp.TANH,
    "sqrt": LoopOp.SQRT, "rsqrt": LoopOp.RSQRT, "reciprocal": LoopOp.RECIPROCAL, "erf": LoopOp.ERF,
    "floor": LoopOp.FLOOR, "ceil": LoopOp.CEIL, "trunc": LoopOp.TRUNC, "round": LoopOp.ROUND, "sign": LoopOp.SIGN,
    "logical_not": LoopOp.NOT, "isnan": LoopOp.ISNAN,
    "add": LoopOp.ADD, "sub": LoopOp.SUB, "mul": LoopOp.MUL, "div": LoopOp.TRUEDIV, "pow": LoopOp.POW,
    "maximum": LoopOp.MAXIMUM, "minimum": LoopOp.MINIMUM, "eq": LoopOp.EQ, "ne": LoopOp.NE, "lt": LoopOp.LT,
    "le": LoopOp.LE, "gt": LoopOp.GT, "ge": LoopOp.GE, "logical_and": LoopOp.AND, "logical_or": LoopOp.OR,
    "erfc": LoopOp.ERFC, "signbit": LoopOp.SIGNBIT, "bitwise_not": LoopOp.BITNOT, "bitwise_and": LoopOp.AND,
    "bitwise_or": LoopOp.OR, "bitwise_xor": LoopOp.XOR, "shift_left": LoopOp.SHL, "shift_right": LoopOp.SHR,
    "atan2": LoopOp.ATAN2,
}


def _operand_loaders(args):
    tensor = next(a for a in args if isinstance(a, TensorValue))
    loaders = []
    for a in args:
        if isinstance(a, TensorValue):
            loaders.append(a.loader)
        else:
            c = L.constant(a, tensor.dtype)
            loaders.append(lambda idx, c=c: c)
    return tensor, loaders


def pointwise(kind: LoopOp, args, dtype=None) -> TensorValue:
    tensor, loaders = _operand_loaders(args)

    def loader(idx):
        return L.op(kind, *(ld(idx) for ld in loaders), dtype=dtype)

    out_dtype = dtype or (torch.bool if kind in L.COMPARISONS else tensor.dtype)
    cost = L.op_cost(kind) + sum(a.cost for a in args if isinstance(a, TensorValue))
    return TensorValue(tensor.shape, out_dtype, tensor.device, loader, cost=cost)


def _lower_elementwise(kind, graph, *args):
    return pointwise(kind, args)


for _name, _kind in ELEMENTWISE.items():
    lowers(_name)(functools.partial(_lower_elementwise, _kind))


# Prims the loop IR computes from other loop ops (accurate formulations, not textbook ones).
def _k(x, value):
    return L.constant(value, x.dtype)


def _op(kind, *args):
    return L.op(kind, *args)


def _sqrt_1mx2(x):  # sqrt((1 - x)(1 + x)): no cancellation near |x| = 1
    one = _k(x, 1.0)
    return _op(LoopOp.SQRT, _op(LoopOp.MUL, _op(LoopOp.SUB, one, x), _op(LoopOp.ADD, one, x)))


def _big_log(x):  # log(|x|) + log(2): asinh/acosh for |x| large enough that x*x would overflow
    return _op(LoopOp.ADD, _op(LoopOp.LOG, _op(LoopOp.ABS, x)), _k(x, math.log(2.0)))


def _asinh(x):
    a = _op(LoopOp.ABS, x)
    one = _k(x, 1.0)
    small = _op(LoopOp.LOG1P, _op(LoopOp.ADD, a, _op(LoopOp.TRUEDIV, _op(LoopOp.MUL, a, a), _op(
        LoopOp.ADD, one, _op(LoopOp.SQRT, _op(LoopOp.ADD, one, _op(LoopOp.MUL, a, a)))))))
    y = L.where(_op(LoopOp.GT, a, _k(x, 1e8)), _big_log(x), small)
    return L.where(_op(LoopOp.SIGNBIT, x), _op(LoopOp.NEG, y), y)


def _acosh(x):
    one = _k(x, 1.0)
    xm1 = _op(LoopOp.SUB, x, one)
    small = _op(LoopOp.LOG1P, _op(LoopOp.ADD, xm1, _op(LoopOp.SQRT, _op(LoopOp.MUL, xm1, _op(LoopOp.ADD, x, one)))))
    y = L.where(_op(LoopOp.GT, x, _k(x, 1e8)), _big_log(x), small)
    return L.where(_op(LoopOp.LT, x, one), _k(x, math.nan), y)  # below 1 (-inf too): NaN


# Beyond |x| = 20, e^-|x| is below the last bit of e^|x| / 2: sinh and cosh are e^|x| / 2, computed as
# (e^(|x|/2) / 2) * e^(|x|/2) so that results near the dtype's max do not overflow early (e^89 does in float32).
_HYPERBOLIC_BIG = 20.0


def _half_exp(x):
    h = _op(LoopOp.EXP, _op(LoopOp.MUL, _op(LoopOp.ABS, x), _k(x, 0.5)))
    return _op(LoopOp.MUL, _op(LoopOp.MUL, h, _k(x, 0.5)), h)


def _sinh(x):
    small = _op(LoopOp.MUL, _op(LoopOp.SUB, _op(LoopOp.EXPM1, x), _op(LoopOp.EXPM1, _op(LoopOp.NEG, x))), _k(x, 0.5))
    big = _half_exp(x)
    big = L.where(_op(LoopOp.SIGNBIT, x), _op(LoopOp.NEG, big), big)
    return L.where(_op(LoopOp.GT, _op(LoopOp.ABS, x), _k(x, _HYPERBOLIC_BIG)), big, small)


def _cosh(x):
    small = _op(LoopOp.MUL, _op(LoopOp.ADD, _op(LoopOp.EXP, x), _op(LoopOp.EXP, _op(LoopOp.NEG, x))), _k(x, 0.5))
    return L.where(_op(LoopOp.GT, _op(LoopOp.ABS, x), _k(x, _HYPERBOLIC_BIG)), _half_exp(x), small)


def _hypot(a, b):
    aa, ab = _op(LoopOp.ABS, a), _op(LoopOp.ABS, b)
    hi, lo = _op(LoopOp.MAXIMUM, aa, ab), _op(LoopOp.MINIMUM, aa, ab)
    safe = L.where(_op(LoopOp.EQ, hi, _k(a, 0.0)), _k(a, 1.0), hi)
    q = _op(LoopOp.TRUEDIV, lo, safe)
    r = _op(LoopOp.MUL, hi, _op(LoopOp.SQRT, _op(LoopOp.ADD, _k(a, 1.0), _op(LoopOp.MUL, q, q))))
    inf = _k(a, math.inf)
    return L.where(_op(LoopOp.OR, _op(LoopOp.EQ, aa, inf), _op(LoopOp.EQ, ab, inf)), inf, r)


COMPOSED = {
    "asin": lambda x: _op(LoopOp.ATAN2, x, _sqrt_1mx2(x)),
    "acos": lambda x: _op(LoopOp.ATAN2, _sqrt_1mx2(x), x),
    "atan": lambda x: _op(LoopOp.ATAN2, x, _k(x, 1.0)),
    "sinh": _sinh,
    "cosh": _cosh,
    "asinh": _asinh,
    "acosh": _acosh,
    "atanh": lambda x: _op(LoopOp.MUL, _op(LoopOp.LOG1P, _op(LoopOp.TRUEDIV, _op(LoopOp.MUL, x, _k(x, 2.0)), _op(
        LoopOp.SUB, _k(x, 1.0), x))), _k(x, 0.5)),
    "exp2": lambda x: _op(LoopOp.POW, _k(x, 2.0), x),
    "log2": lambda x: _op(LoopOp.MUL, _op(LoopOp.LOG, x), _k(x, 1.0 / math.log(2.0))),
    "log10": lambda x: _op(LoopOp.MUL, _op(LoopOp.LOG, x), _k(x, 1.0 / math.log(10.0))),
    "isinf": lambda x: _op(LoopOp.EQ, _op(LoopOp.ABS, x), _k(x, math.inf)),
    "copysign": lambda a, b: L.where(_op(LoopOp.SIGNBIT, b), _op(LoopOp.NEG, _op(LoopOp.ABS, a)), _op(LoopOp.ABS, a)),
    "hypot": _hypot,
}


def _lower_composed(fn, graph, *args):
    tensor, loaders = _operand_loaders(args)
    cost = 4 + sum(a.cost for a in args if isinstance(a, TensorValue))
    out = fn(*(L.constant(0, tensor.dtype) for _ in args))
    return TensorValue(tensor.shape, out.dtype, tensor.device, lambda idx: fn(*(ld(idx) for ld in loaders)), cost=cost)


for _name, _fn in COMPOSED.items():
    lowers(_name)(functools.partial(_lower_composed, _fn))


# Divisions whose integer form raises on a zero divisor in eager (ZeroDivisionError): the divisor
# goes through CHECK_DIVISOR, which flags the kernel's error (the wrapper then lets eager raise)
# and divides by 1 instead, so no kernel ever traps. A nonzero constant divisor needs no check.
DIVISIONS = {"trunc_div": LoopOp.TRUEDIV, "fmod": LoopOp.FMOD}


def checked_divisor(b: L.LoopNode) -> L.LoopNode:
    if b.dtype.is_floating_point or (b.op is LoopOp.CONSTANT and b.attr != 0):
        return b
    return L.op(LoopOp.CHECK_DIVISOR, b)


def _lower_division(kind, graph, a, b):
    tensor, (la, lb) = _operand_loaders((a, b))
    cost = L.op_cost(kind) + 1 + sum(x.cost for x in (a, b) if isinstance(x, TensorValue))
    return TensorValue(tensor.shape, tensor.dtype, tensor.device,
                       lambda idx: L.op(kind, la(idx), checked_divisor(lb(idx))), cost=cost)


for _name, _kind in DIVISIONS.items():
    lowers(_name)(functools.partial(_lower_division, _kind))


@lowers("where")
def where(graph, cond, a, b):
    _, (lc, la, lb) = _operand_loaders((cond, a, b))
    dtype = next(x.dtype for x in (a, b) if isinstance(x, TensorValue))
    if not isinstance(a, TensorValue):
        la = (lambda idx, c=L.constant(a, dtype): c)
    if not isinstance(b, TensorValue):
        lb = (lambda idx, c=L.constant(b, dtype): c)
    cost = 1 + sum(x.cost for x in (cond, a, b) if isinstance(x, TensorValue))
    return TensorValue(cond.shape, dtype, cond.device, lambda idx: L.where(lc(idx), la(idx), lb(idx)), cost=cost)


@lowers("convert_element_type")
def convert_element_type(graph, x, dtype):
    return TensorValue(x.shape, dtype, x.device, lambda idx: L.to_dtype(x.loader(idx), dtype), cost=x.cost + 1)


@lowers("full")
def full(graph, shape, value, *, dtype, device):
    c = L.constant(value, dtype)
    return TensorValue(tuple(shape), dtype, torch.device(device), lambda idx: c)


@lowers("iota")
def iota(graph, length, *, start, step, dtype, device):
    def loader(idx):
        pos = L.LoopNode(LoopOp.INDEX_EXPR, (), torch.int64, affine(idx[0]) * step + start)
        return L.to_dtype(pos, dtype)

    return TensorValue((length,), dtype, torch.device(device), loader, cost=1)
