"""Loop op -> C++ expression, one table entry per op; and C++ spellings of dtypes and constants."""
from __future__ import annotations

import math

import torch

from inductor.ir.loop import LoopOp, ReductionType

CTYPES = {
    torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
    torch.int16: "int16_t", torch.int8: "int8_t", torch.uint8: "uint8_t", torch.bool: "bool",
}

# {0}, {1}, {2}: operands; {T}: the result's C type
EXPR = {
    LoopOp.NEG: "-{0}", LoopOp.ABS: "std::abs({0})", LoopOp.EXP: "std::exp({0})", LoopOp.LOG: "std::log({0})",
    LoopOp.LOG1P: "std::log1p({0})", LoopOp.EXPM1: "std::expm1({0})", LoopOp.SIN: "std::sin({0})",
    LoopOp.COS: "std::cos({0})", LoopOp.TAN: "std::tan({0})", LoopOp.TANH: "std::tanh({0})",
    LoopOp.SQRT: "std::sqrt({0})", LoopOp.RSQRT: "{T}(1) / std::sqrt({0})", LoopOp.RECIPROCAL: "{T}(1) / {0}",
    LoopOp.ERF: "std::erf({0})", LoopOp.FLOOR: "std::floor({0})", LoopOp.CEIL: "std::ceil({0})",
    LoopOp.TRUNC: "std::trunc({0})", LoopOp.ROUND: "std::nearbyint({0})", LoopOp.SIGN: "kiln_sign({0})",
    LoopOp.NOT: "!{0}", LoopOp.ISNAN: "std::isnan({0})",
    LoopOp.ADD: "{0} + {1}", LoopOp.SUB: "{0} - {1}", LoopOp.MUL: "{0} * {1}", LoopOp.TRUEDIV: "{0} / {1}",
    LoopOp.POW: "kiln_pow({0}, {1})", LoopOp.MAXIMUM: "kiln_max({0}, {1})", LoopOp.MINIMUM: "kiln_min({0}, {1})",
    LoopOp.EQ: "{0} == {1}", LoopOp.NE: "{0} != {1}", LoopOp.LT: "{0} < {1}", LoopOp.LE: "{0} <= {1}",
    LoopOp.GT: "{0} > {1}", LoopOp.GE: "{0} >= {1}", LoopOp.AND: "{0} && {1}", LoopOp.OR: "{0} || {1}",
    LoopOp.WHERE: "{0} ? {1} : {2}", LoopOp.TO_DTYPE: "static_cast<{T}>({0})",
}

# reduction -> (initial value of the accumulator, combine statement, omp simd reduction operator or None)
REDUCTION = {
    ReductionType.SUM: ("{T}(0)", "{acc} = {acc} + {v};", "+"),
    ReductionType.PROD: ("{T}(1)", "{acc} = {acc} * {v};", "*"),
    ReductionType.MAX: ("kiln_lowest<{T}>()", "{acc} = kiln_max({acc}, {v});", None),
    ReductionType.MIN: ("kiln_highest<{T}>()", "{acc} = kiln_min({acc}, {v});", None),
    ReductionType.ARGMAX: ("{T}(0)", "if ({acc}_i < 0 || kiln_gt({v}, {acc})) {{ {acc} = {v}; {acc}_i = {r}; }}", None),
    ReductionType.ARGMIN: ("{T}(0)", "if ({acc}_i < 0 || kiln_lt({v}, {acc})) {{ {acc} = {v}; {acc}_i = {r}; }}", None),
}

PREAMBLE = r"""
#include <cmath>
#include <cstdint>
#include <limits>

// NaN-propagating max/min, as torch.maximum / torch.amax.
template <typename T> static inline T kiln_max(T a, T b) { return (a != a) ? a : ((b != b) ? b : (a > b ? a : b)); }
template <typename T> static inline T kiln_min(T a, T b) { return (a != a) ? a : ((b != b) ? b : (a < b ? a : b)); }
// argmax/argmin order: NaN beats everything, the first of equals wins.
template <typename T> static inline bool kiln_gt(T a, T b) { return (a > b) || (a != a && b == b); }
template <typename T> static inline bool kiln_lt(T a, T b) { return (a < b) || (a != a && b == b); }
template <typename T> static inline T kiln_lowest() {
  return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
}
template <typename T> static inline T kiln_highest() {
  return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
}
template <typename T> static inline T kiln_sign(T a) { return static_cast<T>((T(0) < a) - (a < T(0))); }
static inline float kiln_pow(float a, float b) { return std::pow(a, b); }
static inline double kiln_pow(double a, double b) { return std::pow(a, b); }
template <typename T> static inline T kiln_pow(T base, T exp) {  // integers, as torch.pow
  if (exp < 0) return base == 1 ? T(1) : (base == T(-1) ? (exp % 2 ? T(-1) : T(1)) : T(0));
  T out = 1;
  while (exp) { if (exp & 1) out *= base; base *= base; exp >>= 1; }
  return out;
}
"""


def ctype(dtype) -> str:
    return CTYPES[dtype]


def literal(value, dtype) -> str:
    t = ctype(dtype)
    if dtype == torch.bool:
        return "true" if value else "false"
    if dtype.is_floating_point:
        v = float(value)
        if math.isnan(v):
            return f"std::numeric_limits<{t}>::quiet_NaN()"
        if math.isinf(v):
            return f"{'-' if v < 0 else ''}std::numeric_limits<{t}>::infinity()"
        return f"static_cast<{t}>({v!r})"
    return f"static_cast<{t}>({int(value)}LL)"
