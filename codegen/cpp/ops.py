"""Loop op -> C++ expression, one table entry per op; and C++ spellings of dtypes and constants."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inductor.ir.loop import LoopOp, ReductionType

CTYPES = {
    torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
    torch.int16: "int16_t", torch.int8: "int8_t", torch.uint8: "uint8_t", torch.bool: "bool",
}

# {0}, {1}, {2}: operands; {T}: the result's C type
EXPR = {
    LoopOp.NEG: "-{0}", LoopOp.ABS: "std::abs({0})", LoopOp.EXP: "kiln_exp({0})", LoopOp.LOG: "kiln_log({0})",
    LoopOp.LOG1P: "kiln_log1p({0})", LoopOp.EXPM1: "kiln_expm1({0})", LoopOp.SIN: "std::sin({0})",
    LoopOp.COS: "std::cos({0})", LoopOp.TAN: "std::tan({0})", LoopOp.TANH: "kiln_tanh({0})",
    LoopOp.SQRT: "std::sqrt({0})", LoopOp.RSQRT: "{T}(1) / std::sqrt({0})", LoopOp.RECIPROCAL: "{T}(1) / {0}",
    LoopOp.ERF: "kiln_erf({0})", LoopOp.FLOOR: "std::floor({0})", LoopOp.CEIL: "std::ceil({0})",
    LoopOp.TRUNC: "std::trunc({0})", LoopOp.ROUND: "std::nearbyint({0})", LoopOp.SIGN: "kiln_sign({0})",
    LoopOp.NOT: "!{0}", LoopOp.ISNAN: "std::isnan({0})",
    LoopOp.ADD: "{0} + {1}", LoopOp.SUB: "{0} - {1}", LoopOp.MUL: "{0} * {1}", LoopOp.TRUEDIV: "{0} / {1}",
    LoopOp.POW: "kiln_pow({0}, {1})", LoopOp.MAXIMUM: "kiln_max({0}, {1})", LoopOp.MINIMUM: "kiln_min({0}, {1})",
    LoopOp.EQ: "{0} == {1}", LoopOp.NE: "{0} != {1}", LoopOp.LT: "{0} < {1}", LoopOp.LE: "{0} <= {1}",
    LoopOp.GT: "{0} > {1}", LoopOp.GE: "{0} >= {1}", LoopOp.AND: "{0} & {1}", LoopOp.OR: "{0} | {1}",
    LoopOp.XOR: "{0} ^ {1}", LoopOp.BITNOT: "~{0}", LoopOp.SHL: "kiln_shl({0}, {1})", LoopOp.SHR: "kiln_shr({0}, {1})",
    LoopOp.ERFC: "std::erfc({0})", LoopOp.SIGNBIT: "std::signbit({0})", LoopOp.ATAN2: "std::atan2({0}, {1})",
    LoopOp.FMOD: "kiln_fmod({0}, {1})", LoopOp.CHECK_INDEX: "kiln_check_index({0}, {1}, kiln_bad)",
    LoopOp.WHERE: "{0} ? {1} : {2}", LoopOp.TO_DTYPE: "static_cast<{T}>({0})",
}

# reduction -> how to accumulate it in C++:
#   decls: accumulators declared before the loop; combine: one statement per element;
#   omp: `#pragma omp simd` reduction clauses, or None when the loop must stay in order;
#   final: the result expression after the loop.
# Max/min keep a NaN flag beside a plain max, so the loop vectorizes and NaN still propagates.
@dataclass(frozen=True)
class CppReduction:
    decls: tuple[str, ...]
    combine: str
    omp: str | None
    final: str


REDUCTION = {
    ReductionType.SUM: CppReduction(("{T} {acc} = {T}(0);",), "{acc} = {acc} + {v};", "reduction(+:{acc})", "{acc}"),
    ReductionType.PROD: CppReduction(("{T} {acc} = {T}(1);",), "{acc} = {acc} * {v};", "reduction(*:{acc})", "{acc}"),
    ReductionType.MAX: CppReduction(
        ("{T} {acc} = kiln_lowest<{T}>();", "bool {acc}_nan = false;"),
        "{acc} = {v} > {acc} ? {v} : {acc}; {acc}_nan = {acc}_nan || ({v} != {v});",
        "reduction(max:{acc}) reduction(||:{acc}_nan)", "kiln_nan_if({acc}_nan, {acc})"),
    ReductionType.MIN: CppReduction(
        ("{T} {acc} = kiln_highest<{T}>();", "bool {acc}_nan = false;"),
        "{acc} = {v} < {acc} ? {v} : {acc}; {acc}_nan = {acc}_nan || ({v} != {v});",
        "reduction(min:{acc}) reduction(||:{acc}_nan)", "kiln_nan_if({acc}_nan, {acc})"),
    ReductionType.ARGMAX: CppReduction(
        ("{T} {acc} = {T}(0);", "int64_t {acc}_i = -1;"),
        "if ({acc}_i < 0 || kiln_gt({v}, {acc})) {{ {acc} = {v}; {acc}_i = {r}; }}", None, "{acc}_i"),
    ReductionType.ARGMIN: CppReduction(
        ("{T} {acc} = {T}(0);", "int64_t {acc}_i = -1;"),
        "if ({acc}_i < 0 || kiln_lt({v}, {acc})) {{ {acc} = {v}; {acc}_i = {r}; }}", None, "{acc}_i"),
}

PREAMBLE = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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
template <typename T> static inline T kiln_nan_if(bool nan, T v) {
  if constexpr (std::numeric_limits<T>::has_quiet_NaN) return nan ? std::numeric_limits<T>::quiet_NaN() : v;
  else return v;
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
// torch's shifts: out-of-range shift counts give 0 (left) or the sign fill (right), never UB.
template <typename T> static inline T kiln_shl(T a, T b) {
  constexpr int bits = sizeof(T) * 8;
  return (b < 0 || b >= bits) ? T(0) : static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) << b);
}
template <typename T> static inline T kiln_shr(T a, T b) {
  constexpr int bits = sizeof(T) * 8 - std::is_signed_v<T>;
  return (b < 0 || b >= bits) ? static_cast<T>(a >> bits) : static_cast<T>(a >> b);
}
static inline float kiln_fmod(float a, float b) { return std::fmod(a, b); }
static inline double kiln_fmod(double a, double b) { return std::fmod(a, b); }
template <typename T> static inline T kiln_fmod(T a, T b) { return b == 0 ? T(0) : static_cast<T>(a % b); }  // no SIGFPE
// Branch-free float math that g++ vectorizes inside loops (the libm calls do not vectorize
// without -ffast-math). Accuracy is within a couple of ulp, like the SIMD math eager uses.
static inline float kiln_bits2f(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int32_t kiln_f2bits(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

static inline float kiln_exp(float x) {
  const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  float n = std::nearbyint(xc * log2e);
  float r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t ni = static_cast<int32_t>(n);
  int32_t n1 = ni / 2, n2 = ni - n1;  // two steps so 2^n cannot overflow or go subnormal early
  float y = p * kiln_bits2f((n1 + 127) << 23) * kiln_bits2f((n2 + 127) << 23);
  y = x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : y;
  y = x < -103.972084045410f ? 0.0f : y;
  return x != x ? x : y;
}
static inline double kiln_exp(double x) { return std::exp(x); }

static inline float kiln_log(float x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1)
  bool sub = x < 1.17549435e-38f;
  float xs = sub ? x * 8388608.0f : x;  // scale subnormals up by 2^23
  int32_t bits = kiln_f2bits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  float m = kiln_bits2f((bits & 0x007fffff) | 0x3f800000);
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  float s = (m - 1.0f) / (m + 1.0f);
  float s2 = s * s;
  float p = 0.0909090909f;
  p = p * s2 + 0.1111111111f;
  p = p * s2 + 0.1428571429f;
  p = p * s2 + 0.2f;
  p = p * s2 + 0.3333333333f;
  float lm = 2.0f * s + 2.0f * s * s2 * p;
  float ef = static_cast<float>(e) - (sub ? 23.0f : 0.0f);
  float y = ef * 0.693359375f + (lm + ef * -2.12194440e-4f);
  y = x == 0.0f ? -std::numeric_limits<float>::infinity() : y;
  y = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : y;
  y = x == std::numeric_limits<float>::infinity() ? x : y;
  return x != x ? x : y;
}
static inline double kiln_log(double x) { return std::log(x); }

static inline float kiln_expm1(float x) {
  float x2 = x * x;
  float p = 1.0f / 362880.0f;  // Taylor to x^9 / 9!: below 1e-8 relative for |x| < 0.5
  p = p * x + 1.0f / 40320.0f;
  p = p * x + 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  float small = x + x2 * p;
  float big = kiln_exp(x) - 1.0f;
  return std::fabs(x) < 0.5f ? small : big;
}
static inline double kiln_expm1(double x) { return std::expm1(x); }

static inline float kiln_log1p(float x) {
  float u = 1.0f + x;
  float d = u - 1.0f;
  float y = kiln_log(u) * (x / (d == 0.0f ? 1.0f : d));  // corrects the rounding of 1 + x
  y = d == 0.0f ? x : y;
  return u == std::numeric_limits<float>::infinity() ? u : y;
}
static inline double kiln_log1p(double x) { return std::log1p(x); }

static inline float kiln_tanh(float x) {
  float a = std::fabs(x);
  float e = kiln_expm1(-2.0f * (a > 20.0f ? 20.0f : a));
  float y = -e / (2.0f + e);
  y = x < 0.0f ? -y : y;
  return x != x ? x : y;
}
static inline double kiln_tanh(double x) { return std::tanh(x); }

static inline float kiln_erf(float x) {
  float a = std::fabs(x);
  float a2 = a * a;
  // |x| < 0.5: Taylor series of 2/sqrt(pi) * (x - x^3/3 + x^5/10 - ...)
  float p = -1.0f / 9360.0f;
  p = p * a2 + 1.0f / 1320.0f;
  p = p * a2 - 1.0f / 216.0f;
  p = p * a2 + 1.0f / 42.0f;
  p = p * a2 - 1.0f / 10.0f;
  p = p * a2 + 1.0f / 3.0f;
  float small = 1.12837916709551257f * a * (1.0f - a2 * p);
  // otherwise erfc by Chebyshev fitting (relative error < 1.2e-7), erf = 1 - erfc
  float t = 1.0f / (1.0f + 0.5f * a);
  float q = 0.17087277f;
  q = q * t - 0.82215223f;
  q = q * t + 1.48851587f;
  q = q * t - 1.13520398f;
  q = q * t + 0.27886807f;
  q = q * t - 0.18628806f;
  q = q * t + 0.09678418f;
  q = q * t + 0.37409196f;
  q = q * t + 1.00002368f;
  q = q * t - 1.26551223f;
  float big = 1.0f - t * kiln_exp(-a2 + q);
  float y = a < 0.5f ? small : big;
  y = x < 0.0f ? -y : y;
  return x != x ? x : y;
}
static inline double kiln_erf(double x) { return std::erf(x); }
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
