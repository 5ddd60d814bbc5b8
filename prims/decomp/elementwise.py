"""Elementwise ATen ops -> prims: promotion and broadcasting made explicit."""
from __future__ import annotations

import torch

from ..builder import is_tensor_like
from .promote import P, Promotion, broadcast_shapes, broadcast_to, convert, elementwise_args, elementwise_dtypes
from .registry import fallback_call, register

aten = torch.ops.aten
D, F, B = Promotion.DEFAULT, Promotion.INT_TO_FLOAT, Promotion.ALWAYS_BOOL

# aten packet -> (prim, promotion)
UNARY = {
    aten.abs: ("abs", D), aten.neg: ("neg", D), aten.exp: ("exp", F), aten.log: ("log", F),
    aten.log1p: ("log1p", F), aten.expm1: ("expm1", F), aten.sin: ("sin", F), aten.cos: ("cos", F),
    aten.tan: ("tan", F), aten.tanh: ("tanh", F), aten.sqrt: ("sqrt", F), aten.rsqrt: ("rsqrt", F),
    aten.reciprocal: ("reciprocal", F), aten.erf: ("erf", F), aten.floor: ("floor", D),
    aten.ceil: ("ceil", D), aten.trunc: ("trunc", D), aten.sign: ("sign", D),
}

# aten overload -> (prim, promotion)
BINARY = {
    aten.mul.Tensor: ("mul", D), aten.mul.Scalar: ("mul", D),
    aten.div.Tensor: ("div", F), aten.div.Scalar: ("div", F),
    aten.maximum.default: ("maximum", D), aten.minimum.default: ("minimum", D),
    aten.pow.Tensor_Tensor: ("pow", D), aten.pow.Scalar: ("pow", D),
    **{getattr(aten, c).Tensor: (c, B) for c in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{getattr(aten, c).Scalar: (c, B) for c in ("eq", "ne", "lt", "le", "gt", "ge")},
}


def _unary(prim, how):
    def decomp(x):
        compute, result = elementwise_dtypes(x, how=how)
        if prim in ("floor", "ceil", "trunc") and not compute.is_floating_point:
            return x  # integer rounding is the identity
        if prim == "sign" and compute == torch.bool:
            return x  # eager: the sign of a bool is the bool itself (the prim refuses bool)
        if prim == "abs" and x.dtype.is_complex:
            return fallback_call(aten.abs.default, x)  # a real magnitude; kiln.abs keeps its input's dtype
        return convert(P[prim](convert(x, compute)), result)

    return decomp


# Eager's mul and true-division kernels read a Python scalar (the second operand) unrounded, in
# float32, for 16-bit tensors; the others round it to the tensor's dtype first.
OPMATH_SCALARS = {"mul", "div"}


def _binary(prim, how):
    def decomp(a, b):
        (a, b), result, _ = elementwise_args(a, b, how=how, opmath_second=prim in OPMATH_SCALARS)
        return convert(P[prim](a, b), result)

    return decomp


for _packet, (_prim, _how) in UNARY.items():
    register(_packet.default)(_unary(_prim, _how))
for _op, (_prim, _how) in BINARY.items():
    register(_op)(_binary(_prim, _how))


@register(aten.round.default)
def round_(x):
    return x if not x.dtype.is_floating_point else _unary("round", D)(x)


def _times_alpha(a, b, alpha):
    """b * alpha in the compute dtype. A scalar b is scaled in Python (a prim needs a tensor operand);
    a is then the tensor, so its dtype is the compute dtype."""
    if alpha == 1:
        return b
    if is_tensor_like(b):
        return P["mul"](b, convert(alpha, b.dtype))
    return convert(convert(b, a.dtype) * convert(alpha, a.dtype), a.dtype)


@register(aten.add.Tensor, aten.add.Scalar)
def add(a, b, alpha=1):
    (a, b), result, _ = elementwise_args(a, b)
    return convert(P["add"](a, _times_alpha(a, b, alpha)), result)


@register(aten.sub.Tensor, aten.sub.Scalar)
def sub(a, b, alpha=1):
    (a, b), result, _ = elementwise_args(a, b)
    return convert(P["sub"](a, _times_alpha(a, b, alpha)), result)


@register(aten.rsub.Tensor, aten.rsub.Scalar)
def rsub(a, b, alpha=1):
    return sub(b, a, alpha)


# Float powers by these Python exponents: eager's kernel computes them so (sqrt(-0.0) is -0.0 and
# sqrt(-inf) NaN, where pow gives 0.0 and inf), and so does Kiln, to match it bit for bit; except
# where eager's own kernel for a dtype calls pow (POWERS_BY_POW).
POWERS_BY_POW = {(torch.float16, 0.5), (torch.float16, -0.5)}
EAGER_POWERS = {
    0.5: lambda x: P["sqrt"](x),
    2: lambda x: P["mul"](x, x),
    3: lambda x: P["mul"](P["mul"](x, x), x),
    -0.5: lambda x: P["rsqrt"](x),
    -1: lambda x: P["reciprocal"](x),
    -2: lambda x: P["reciprocal"](P["mul"](x, x)),
}


@register(aten.pow.Tensor_Scalar)
def pow_scalar(x, exponent):
    (x, b), result, _ = elementwise_args(x, exponent)
    special = EAGER_POWERS.get(exponent) if not isinstance(exponent, bool) else None
    if (result, exponent) in POWERS_BY_POW:
        special = None
    if special is not None and (x.dtype.is_floating_point or exponent == 2):
        return convert(special(x), result)
    return convert(P["pow"](x, b), result)


@register(aten.logical_not.default)
def logical_not(x):
    return P["logical_not"](_to_bool(x))


def _to_bool(x):
    return x if x.dtype == torch.bool else P["ne"](x, convert(0, x.dtype))


def _logical(prim):
    def decomp(a, b):
        (a, b), _, _ = elementwise_args(a, b)
        return P[prim](_to_bool(a), _to_bool(b))

    return decomp


register(aten.logical_and.default)(_logical("logical_and"))
register(aten.logical_or.default)(_logical("logical_or"))


@register(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def where(cond, a, b):
    compute, result = elementwise_dtypes(a, b)
    shape = broadcast_shapes(*(tuple(t.shape) for t in (cond, a, b) if is_tensor_like(t)))
    a, b = (broadcast_to(convert(v, result), shape) if is_tensor_like(v) else convert(v, result) for v in (a, b))
    return P["where"](broadcast_to(_to_bool(cond), shape), a, b)


def clamp_low(x, low):
    """Eager's max(x, low) of clamp and relu: x itself unless it is below low (clamp(-0.0, min=0.0)
    is -0.0), NaN where either is NaN. The maximum prim returns its second operand on ties."""
    return P["maximum"](low, x)


def clamp_high(x, high):
    return P["minimum"](high, x)


@register(aten.clamp.default, aten.clamp.Tensor)
def clamp(x, min=None, max=None):
    (y, *bounds), result, _ = elementwise_args(x, *(b for b in (min, max) if b is not None))
    bounds = iter(bounds)
    if min is not None:
        y = clamp_low(y, next(bounds))
    if max is not None:
        y = clamp_high(y, next(bounds))
    return convert(y, result)


@register(aten.clamp_min.default, aten.clamp_min.Tensor)
def clamp_min(x, min):
    return clamp(x, min=min)


@register(aten.clamp_max.default, aten.clamp_max.Tensor)
def clamp_max(x, max):
    return clamp(x, max=max)
