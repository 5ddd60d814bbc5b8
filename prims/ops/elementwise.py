"""Elementwise prims: unary, binary and where. Same shape and dtype in, contiguous out.

Binary prims accept one Python scalar operand; it is taken in the tensor operand's dtype.
"""
from __future__ import annotations

import numbers

import torch

from ..symbolic import is_symbolic
from ..builder import is_tensor_like
from ..meta import TensorMeta
from ..prim import Category, check, register_prim

# kind of dtype an op accepts: any, float (floating point only), int (integer or bool), bool
_ACCEPTS = {
    "any": lambda dt: True,
    "float": lambda dt: dt.is_floating_point,
    "int": lambda dt: not dt.is_floating_point and not dt.is_complex,
    "bool": lambda dt: dt == torch.bool,
    "num": lambda dt: dt != torch.bool,
    "integer": lambda dt: not dt.is_floating_point and not dt.is_complex and dt != torch.bool,
}

# name: (torch reference fn, accepted dtypes, result is bool, doc)
UNARY = {
    "abs": (torch.abs, "num", False, "absolute value"),
    "neg": (torch.neg, "num", False, "negation"),
    "exp": (torch.exp, "float", False, "e to the x"),
    "log": (torch.log, "float", False, "natural logarithm"),
    "log1p": (torch.log1p, "float", False, "log(1 + x), accurate near 0"),
    "expm1": (torch.expm1, "float", False, "exp(x) - 1, accurate near 0"),
    "sin": (torch.sin, "float", False, "sine"),
    "cos": (torch.cos, "float", False, "cosine"),
    "tan": (torch.tan, "float", False, "tangent"),
    "tanh": (torch.tanh, "float", False, "hyperbolic tangent"),
    "sqrt": (torch.sqrt, "float", False, "square root"),
    "rsqrt": (torch.rsqrt, "float", False, "1 / sqrt(x)"),
    "reciprocal": (torch.reciprocal, "float", False, "1 / x"),
    "erf": (torch.erf, "float", False, "Gauss error function"),
    "floor": (torch.floor, "num", False, "round towards -inf"),
    "ceil": (torch.ceil, "num", False, "round towards +inf"),
    "trunc": (torch.trunc, "num", False, "round towards zero"),
    "round": (torch.round, "num", False, "round half to even"),
    "sign": (torch.sign, "num", False, "-1, 0 or 1 by sign"),
    "logical_not": (torch.logical_not, "bool", True, "boolean not"),
    "isnan": (torch.isnan, "float", True, "x is NaN"),
    "isinf": (torch.isinf, "float", True, "x is +inf or -inf"),
    "signbit": (torch.signbit, "float", True, "the sign bit of x is set (also for -0.0 and -NaN)"),
    "asin": (torch.asin, "float", False, "arcsine"),
    "acos": (torch.acos, "float", False, "arccosine"),
    "atan": (torch.atan, "float", False, "arctangent"),
    "sinh": (torch.sinh, "float", False, "hyperbolic sine"),
    "cosh": (torch.cosh, "float", False, "hyperbolic cosine"),
    "asinh": (torch.asinh, "float", False, "inverse hyperbolic sine"),
    "acosh": (torch.acosh, "float", False, "inverse hyperbolic cosine"),
    "atanh": (torch.atanh, "float", False, "inverse hyperbolic tangent"),
    "exp2": (torch.exp2, "float", False, "2 to the x"),
    "log2": (torch.log2, "float", False, "base-2 logarithm"),
    "log10": (torch.log10, "float", False, "base-10 logarithm"),
    "erfc": (torch.erfc, "float", False, "complementary error function 1 - erf(x), accurate for large x"),
    "bitwise_not": (torch.bitwise_not, "integer", False, "bitwise complement of an integer"),
}

# name: (torch reference fn, accepted dtypes, result is bool, doc)
BINARY = {
    "add": (torch.add, "any", False, "a + b"),
    "sub": (torch.sub, "num", False, "a - b"),
    "mul": (torch.mul, "any", False, "a * b"),
    "div": (torch.true_divide, "float", False, "a / b, true division (floating point only)"),
    "pow": (torch.pow, "num", False, "a ** b"),
    "maximum": (torch.maximum, "any", False, "elementwise max, NaN-propagating; b on ties (0.0 vs -0.0)"),
    "minimum": (torch.minimum, "any", False, "elementwise min, NaN-propagating; b on ties (0.0 vs -0.0)"),
    "eq": (torch.eq, "any", True, "a == b"),
    "ne": (torch.ne, "any", True, "a != b"),
    "lt": (torch.lt, "any", True, "a < b"),
    "le": (torch.le, "any", True, "a <= b"),
    "gt": (torch.gt, "any", True, "a > b"),
    "ge": (torch.ge, "any", True, "a >= b"),
    "logical_and": (torch.logical_and, "bool", True, "boolean and"),
    "logical_or": (torch.logical_or, "bool", True, "boolean or"),
    "trunc_div": (lambda a, b: torch.div(a, b, rounding_mode="trunc"), "integer", False,
                  "integer a / b rounded towards zero (C division)"),
    "atan2": (torch.atan2, "float", False, "angle of the point (b, a): arctangent of a / b in the right quadrant"),
    "fmod": (torch.fmod, "num", False, "remainder of a / b truncated towards zero (C fmod, sign of a)"),
    "copysign": (torch.copysign, "float", False, "magnitude of a with the sign of b"),
    "hypot": (torch.hypot, "float", False, "sqrt(a*a + b*b) without undue overflow"),
    "bitwise_and": (torch.bitwise_and, "int", False, "bitwise and of integers (and of bools)"),
    "bitwise_or": (torch.bitwise_or, "int", False, "bitwise or of integers (or of bools)"),
    "bitwise_xor": (torch.bitwise_xor, "int", False, "bitwise xor of integers (xor of bools)"),
    "shift_left": (torch.bitwise_left_shift, "integer", False, "a << b; shifts outside [0, bits) give 0"),
    "shift_right": (torch.bitwise_right_shift, "integer", False, "arithmetic a >> b; shifts outside [0, bits) fill with the sign"),
}


def _unary_meta(name, accepts, to_bool):
    def meta(x):
        check(is_tensor_like(x), name, f"expected a tensor, got {type(x).__name__}")
        check(_ACCEPTS[accepts](x.dtype), name, f"dtype {x.dtype} not supported")
        return TensorMeta.contiguous(x.shape, torch.bool if to_bool else x.dtype, x.device)

    return meta


def _scalar_fits(value, dtype) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, numbers.Integral) or is_symbolic(value):  # a size is an integer
        return dtype != torch.bool
    return isinstance(value, numbers.Real) and dtype.is_floating_point


def _binary_meta(name, accepts, to_bool):
    def meta(a, b):
        tensors = [t for t in (a, b) if is_tensor_like(t)]
        check(len(tensors) >= 1, name, "needs at least one tensor operand")
        t0 = tensors[0]
        for t in tensors[1:]:
            check(tuple(t.shape) == tuple(t0.shape), name, f"shapes must match, got {list(t0.shape)} and {list(t.shape)}")
            check(t.dtype == t0.dtype, name, f"dtypes must match, got {t0.dtype} and {t.dtype}")
        for s in (a, b):
            if not is_tensor_like(s):
                check(_scalar_fits(s, t0.dtype), name, f"scalar {s!r} does not fit dtype {t0.dtype}")
        check(_ACCEPTS[accepts](t0.dtype), name, f"dtype {t0.dtype} not supported")
        return TensorMeta.contiguous(t0.shape, torch.bool if to_bool else t0.dtype, t0.device)

    return meta


def _as_tensor(x, like):
    return x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=like.dtype, device=like.device)


def _make_unary_ref(fn):
    return lambda x: fn(x).contiguous()


def _make_binary_ref(fn):
    def ref(a, b):
        like = a if isinstance(a, torch.Tensor) else b
        return fn(_as_tensor(a, like), _as_tensor(b, like)).contiguous()

    return ref


for _name, (_fn, _acc, _bool, _doc) in UNARY.items():
    register_prim(_name, Category.UNARY, _unary_meta(_name, _acc, _bool), _doc, torch_fn=_fn)(_make_unary_ref(_fn))

def _ties_to_second(beats):
    """max/min that return b on ties, as eager's vectorised kernels and both renderers (eager's
    scalar loop returns a: torch.maximum(0.0, -0.0) depends on the tensor's length)."""
    def ref(a, b):
        if not a.dtype.is_floating_point:
            return (torch.maximum if beats is torch.gt else torch.minimum)(a, b)
        return torch.where(torch.isnan(a) | beats(a, b), a, b)

    return ref


REFERENCES = {"maximum": _ties_to_second(torch.gt), "minimum": _ties_to_second(torch.lt)}

for _name, (_fn, _acc, _bool, _doc) in BINARY.items():
    register_prim(_name, Category.BINARY, _binary_meta(_name, _acc, _bool), _doc,
                  torch_fn=_fn)(_make_binary_ref(REFERENCES.get(_name, _fn)))


def _where_meta(cond, a, b):
    check(is_tensor_like(cond) and cond.dtype == torch.bool, "where", "condition must be a bool tensor")
    tensors = [t for t in (a, b) if is_tensor_like(t)]
    dtype = tensors[0].dtype if tensors else None
    for t in tensors:
        check(tuple(t.shape) == tuple(cond.shape), "where", f"shapes must match, got {list(cond.shape)} and {list(t.shape)}")
        check(t.dtype == dtype, "where", f"dtypes must match, got {dtype} and {t.dtype}")
    check(dtype is not None, "where", "needs at least one tensor value operand")
    return TensorMeta.contiguous(cond.shape, dtype, cond.device)


@register_prim("where", Category.TERNARY, _where_meta, "cond ? a : b (one of a, b may be a scalar)")
def where(cond, a, b):
    like = a if isinstance(a, torch.Tensor) else b
    return torch.where(cond, _as_tensor(a, like), _as_tensor(b, like)).contiguous()
