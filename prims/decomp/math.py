"""More elementwise ATen ops -> prims: inverse trig and hyperbolics, bit ops, remainders and
rounding divisions, classification (isinf, signbit, ...) and the ops composed from them."""
from __future__ import annotations

import math

import torch

from ..builder import is_tensor_like
from .elementwise import _binary, _to_bool, _unary
from .promote import P, Promotion, convert, elementwise_args, elementwise_dtypes, scalar_of
from .registry import fallback_call, register, register_by_name

aten = torch.ops.aten
D, F, B = Promotion.DEFAULT, Promotion.INT_TO_FLOAT, Promotion.ALWAYS_BOOL

for _name in ("asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "exp2", "log2", "log10", "erfc"):
    register(getattr(aten, _name).default)(_unary(_name, F))

for _packet, _prim in (("bitwise_and", "bitwise_and"), ("bitwise_or", "bitwise_or"), ("bitwise_xor", "bitwise_xor")):
    for _ov in ("Tensor", "Scalar", "Scalar_Tensor"):
        register(getattr(getattr(aten, _packet), _ov))(_binary(_prim, D))
for _packet, _prim in (("bitwise_left_shift", "shift_left"), ("bitwise_right_shift", "shift_right"),
                       ("__lshift__", "shift_left"), ("__rshift__", "shift_right")):
    for _ov in getattr(aten, _packet).overloads():
        if _ov in ("Tensor", "Scalar", "Tensor_Scalar", "Scalar_Tensor"):
            register(getattr(getattr(aten, _packet), _ov))(_binary(_prim, D))

register(aten.atan2.default)(_binary("atan2", F))
register(aten.fmod.Tensor, aten.fmod.Scalar)(_binary("fmod", D))
register(aten.hypot.default)(_binary("hypot", D))


@register(aten.bitwise_not.default)
def bitwise_not(x):
    return P["logical_not"](x) if x.dtype == torch.bool else P["bitwise_not"](x)


@register(aten.copysign.Tensor, aten.copysign.Scalar)
def copysign(a, b):
    (a, b), result, shape = elementwise_args(a, b, how=F)
    if not is_tensor_like(b):  # a Python scalar sign: keep the sign of b as a tensor operand
        b = P["full"](shape, b, dtype=a.dtype, device=a.device)
    return convert(P["copysign"](a, b), result)


@register(aten.logical_xor.default)
def logical_xor(a, b):
    (a, b), _, _ = elementwise_args(a, b)
    return P["bitwise_xor"](_to_bool(a), _to_bool(b))


@register(aten.isnan.default)
def isnan(x):
    return P["isnan"](x) if x.dtype.is_floating_point else _all(x, False)


def _all(x, value):
    return P["full"](tuple(x.shape), value, dtype=torch.bool, device=x.device)


@register(aten.isinf.default)
def isinf(x):
    return P["isinf"](x) if x.dtype.is_floating_point else _all(x, False)


@register(aten.isposinf.default)
def isposinf(x):
    return P["eq"](x, math.inf) if x.dtype.is_floating_point else _all(x, False)


@register(aten.isneginf.default)
def isneginf(x):
    return P["eq"](x, -math.inf) if x.dtype.is_floating_point else _all(x, False)


@register(aten.isfinite.default)
def isfinite(x):
    if not x.dtype.is_floating_point:
        return _all(x, True)
    return P["lt"](P["abs"](x), math.inf)  # false for NaN and both infinities


@register(aten.signbit.default)
def signbit(x):
    if x.dtype.is_floating_point:
        return P["signbit"](x)
    return P["lt"](x, convert(0, x.dtype)) if x.dtype != torch.bool else _all(x, False)


def _remainder(a, b):
    """torch.remainder on same-dtype operands: the result has the sign of the divisor."""
    mod = P["fmod"](a, b)
    zero = convert(0, a.dtype)
    b_neg = P["lt"](b, zero) if is_tensor_like(b) else (b < 0)
    wrong_sign = P["logical_and"](P["ne"](mod, zero), P["ne"](P["lt"](mod, zero), b_neg)) if is_tensor_like(b) \
        else P["logical_and"](P["ne"](mod, zero), P["lt"](mod, zero) if not b_neg else P["ge"](mod, zero))
    return P["where"](wrong_sign, P["add"](mod, b), mod)


@register(aten.remainder.Tensor, aten.remainder.Scalar, aten.remainder.Scalar_Tensor)
def remainder(a, b):
    (a, b), result, shape = elementwise_args(a, b)
    if not is_tensor_like(a):
        a = P["full"](shape, a, dtype=b.dtype, device=b.device)
    return convert(_remainder(a, b), result)


def _floor_div(a, b):
    """torch's floor division on same-dtype operands (its float algorithm, exactly)."""
    if not a.dtype.is_floating_point:
        q = P["trunc_div"](a, b)
        zero = convert(0, a.dtype)
        rem = P["fmod"](a, b)
        b_neg = P["lt"](b, zero) if is_tensor_like(b) else b < 0
        a_neg = P["lt"](a, zero)
        signs_differ = P["ne"](a_neg, b_neg) if is_tensor_like(b) else (a_neg if not b_neg else P["logical_not"](a_neg))
        adjust = P["logical_and"](P["ne"](rem, zero), signs_differ)
        return P["where"](adjust, P["sub"](q, convert(1, a.dtype)), q)
    shape = tuple(a.shape)
    if not is_tensor_like(b):
        b = P["full"](shape, b, dtype=a.dtype, device=a.device)
    mod = P["fmod"](a, b)
    div = P["div"](P["sub"](a, mod), b)
    wrong = P["logical_and"](P["ne"](mod, 0.0), P["ne"](P["lt"](b, 0.0), P["lt"](mod, 0.0)))
    div = P["where"](wrong, P["sub"](div, 1.0), div)
    fl = P["floor"](div)
    fl = P["where"](P["gt"](P["sub"](div, fl), 0.5), P["add"](fl, 1.0), fl)
    zero_q = P["copysign"](P["full"](shape, 0.0, dtype=a.dtype, device=a.device), P["div"](a, b))
    out = P["where"](P["ne"](div, 0.0), fl, zero_q)
    return P["where"](P["eq"](b, 0.0), P["div"](a, b), out)


@register(aten.div.Tensor_mode, aten.div.Scalar_mode)
def div_mode(a, b, *, rounding_mode=None):
    if rounding_mode is None:
        return _binary("div", F)(a, b)
    (a, b), result, shape = elementwise_args(a, b, opmath_second=True)  # as eager's division kernels
    if not is_tensor_like(a):
        a = P["full"](shape, a, dtype=b.dtype, device=b.device)
    if rounding_mode == "floor":
        return convert(_floor_div(a, b), result)
    if a.dtype.is_floating_point:
        return convert(P["trunc"](P["div"](a, b)), result)
    return convert(P["trunc_div"](a, b), result)


@register(aten.floor_divide.default, aten.floor_divide.Scalar)
def floor_divide(a, b):
    return div_mode(a, b, rounding_mode="floor")


def _scale(k):
    def decomp(x):
        x, result = _float(x)
        return convert(P["mul"](x, k), result)

    return decomp


def _float(x):
    compute, result = elementwise_dtypes(x, how=F)
    return convert(x, compute), result


register(aten.deg2rad.default)(_scale(math.pi / 180))
register(aten.rad2deg.default)(_scale(180 / math.pi))


@register(aten.frac.default)
def frac(x):
    return P["sub"](x, P["trunc"](x))


@register(aten.sgn.default)
def sgn(x):
    return x if x.dtype == torch.bool else P["sign"](x)


@register(aten.positive.default)
def positive(x):
    return x


# Where eager's fmax/fmin kernel for a dtype returns the second operand on ties (0.0 vs -0.0).
TIES_TO_SECOND = {torch.bfloat16}


def _fminmax(prim, beats):
    def decomp(a, b):
        (a, b), result, _ = elementwise_args(a, b)
        if not a.dtype.is_floating_point:
            return convert(P[prim](a, b), result)
        # b where it beats a or a is NaN (NaN loses); a otherwise, also on ties (fmax(0.0, -0.0) is 0.0)
        take_b = P[beats](b, a) if result not in TIES_TO_SECOND else P["logical_not"](P[beats](a, b))
        take_b = P["logical_or"](P["isnan"](a), take_b)
        return convert(P["where"](P["logical_and"](take_b, P["logical_not"](P["isnan"](b))), b, a), result)

    return decomp


register(aten.fmax.default)(_fminmax("maximum", "gt"))
register(aten.fmin.default)(_fminmax("minimum", "lt"))


@register(aten.heaviside.default)
def heaviside(x, values):
    (x, values), result, _ = elementwise_args(x, values)
    zero = convert(0, x.dtype)
    pos = P["convert_element_type"](P["gt"](x, zero), x.dtype)
    return convert(P["where"](P["eq"](x, zero), values, pos), result)


@register(aten.lerp.Scalar, aten.lerp.Tensor)
def lerp(start, end, weight):
    if is_tensor_like(weight):
        (start, end, weight), result, shape = elementwise_args(start, end, weight)
    else:  # eager reads a Scalar weight in the compute dtype: 0.4 stays 0.4 for float16 operands, not 0.39990
        (start, end), result, shape = elementwise_args(start, end)
        weight = P["full"](shape, scalar_of(weight, start.dtype), dtype=start.dtype, device=start.device)
    diff = P["sub"](end, start)
    small = P["lt"](P["abs"](weight), 0.5)  # eager's two-sided formula keeps lerp exact at both ends
    lo = P["add"](start, P["mul"](weight, diff))
    hi = P["sub"](end, P["mul"](diff, P["sub"](1.0, weight)))
    return convert(P["where"](small, lo, hi), result)


@register(aten.nan_to_num.default)
def nan_to_num(x, nan=None, posinf=None, neginf=None):
    if not x.dtype.is_floating_point:
        return x
    info = torch.finfo(x.dtype)
    y = P["where"](P["isnan"](x), 0.0 if nan is None else float(nan), x)
    y = P["where"](P["eq"](x, math.inf), info.max if posinf is None else float(posinf), y)
    return P["where"](P["eq"](x, -math.inf), info.min if neginf is None else float(neginf), y)


@register(aten.sinc.default)
def sinc(x):
    x, result = _float(x)
    px = P["mul"](x, math.pi)
    y = P["div"](P["sin"](px), px)
    return convert(P["where"](P["eq"](x, 0.0), 1.0, y), result)


@register(aten.logaddexp.default)
def logaddexp(a, b):
    (a, b), result, _ = elementwise_args(a, b, how=F)
    hi, lo = P["maximum"](a, b), P["minimum"](a, b)
    y = P["add"](hi, P["log1p"](P["exp"](P["sub"](lo, hi))))
    same_inf = P["logical_and"](P["isinf"](a), P["eq"](a, b))  # inf - inf would be NaN
    return convert(P["where"](same_inf, a, y), result)


@register(aten.logaddexp2.default)
def logaddexp2(a, b):
    (a, b), result, _ = elementwise_args(a, b, how=F)
    hi, lo = P["maximum"](a, b), P["minimum"](a, b)
    y = P["add"](hi, P["mul"](P["log1p"](P["exp2"](P["sub"](lo, hi))), 1 / math.log(2)))
    same_inf = P["logical_and"](P["isinf"](a), P["eq"](a, b))
    return convert(P["where"](same_inf, a, y), result)


def _xlog(log_prim, shift):
    def decomp(x, y):
        (x, y), result, shape = elementwise_args(x, y, how=F)
        x = x if is_tensor_like(x) else P["full"](shape, x, dtype=y.dtype, device=y.device)
        y = y if is_tensor_like(y) else P["full"](shape, y, dtype=x.dtype, device=x.device)
        out = P["mul"](x, P[log_prim](y))
        out = P["where"](P["eq"](x, 0.0), 0.0, out)
        return convert(P["where"](P["isnan"](y), y, out), result)

    return decomp


register(aten.xlogy.Tensor, aten.xlogy.Scalar_Self, aten.xlogy.Scalar_Other)(_xlog("log", False))
register(aten.special_xlog1py.default, aten.special_xlog1py.self_scalar,
         aten.special_xlog1py.other_scalar)(_xlog("log1p", True))


@register(aten.special_entr.default)
def entr(x):
    x, result = _float(x)
    y = P["mul"](P["neg"](x), P["log"](x))
    y = P["where"](P["eq"](x, 0.0), 0.0, y)
    y = P["where"](P["lt"](x, 0.0), -math.inf, y)
    return convert(P["where"](P["isnan"](x), x, y), result)


@register(aten.addcmul.default)
def addcmul(x, t1, t2, *, value=1):
    (x, t1, t2), result, _ = elementwise_args(x, t1, t2)
    prod = P["mul"](t1, t2)
    if value != 1:
        prod = P["mul"](prod, convert(value, prod.dtype))
    return convert(P["add"](x, prod), result)


@register(aten.addcdiv.default)
def addcdiv(x, t1, t2, *, value=1):
    (x, t1, t2), result, _ = elementwise_args(x, t1, t2, how=F)
    q = P["div"](t1, t2)
    if value != 1:
        q = P["mul"](q, convert(value, q.dtype))
    return convert(P["add"](x, q), result)


@register(aten.ldexp.Tensor)
def ldexp(x, other):
    (x, other), result, _ = elementwise_args(x, other, how=F)
    return convert(P["mul"](x, P["exp2"](other)), result)


@register(aten.float_power.Tensor_Tensor, aten.float_power.Tensor_Scalar, aten.float_power.Scalar)
def float_power(a, b):
    a = convert(a, torch.float64)
    b = convert(b, torch.float64)
    (a, b), result, shape = elementwise_args(a, b)
    if not is_tensor_like(a):
        a = P["full"](shape, a, dtype=torch.float64, device=b.device)
    return P["pow"](a, b)


@register(aten.logit.default)
def logit(x, eps=None):
    x, result = _float(x)
    if eps is not None:
        x = P["minimum"](P["maximum"](x, float(eps)), 1.0 - float(eps))
    return convert(P["log"](P["div"](x, P["sub"](1.0, x))), result)


@register(aten.round.decimals)
def round_decimals(x, *, decimals=0):
    if not x.dtype.is_floating_point:
        return x
    scale = 10.0 ** abs(decimals)
    if decimals >= 0:
        return P["div"](P["round"](P["mul"](x, scale)), scale)
    return P["mul"](P["round"](P["div"](x, scale)), scale)


@register(aten.true_divide.Tensor)
def true_divide(a, b):
    return _binary("div", F)(a, b)


@register_by_name("prims::fma")
def fma(a, b, c):
    """a * b + c rounded once (inductor's prim, in the graphs of compiled optimizer steps): for
    float32 and 16-bit operands the product is exact in float64 and the sum rounds there, then to
    the result dtype (a double rounding, which can differ from one rounding only at an exact tie of
    the final rounding). Other dtypes run the op as is."""
    (a, b, c), result, shape = elementwise_args(a, b, c)
    if result not in (torch.float32, torch.float16, torch.bfloat16):
        return fallback_call(torch.ops.prims.fma.default, a, b, c)
    wide = [convert(t, torch.float64) for t in (a, b, c)]
    return convert(P["add"](P["mul"](wide[0], wide[1]), wide[2]), result)
