"""The C++ prelude of every generated source: NaN-aware helpers, Kiln's vectorizable float math,
and the helpers that fold reduction accumulators."""

PRELUDE = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <omp.h>

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
// Integer division and remainder never trap: a zero divisor (already flagged by kiln_check_divisor)
// gives 0, and INT_MIN / -1 wraps to INT_MIN (remainder 0), as eager's results.
template <typename T> static inline T kiln_fmod(T a, T b) {
  return (b == 0 || (std::is_signed_v<T> && b == T(-1))) ? T(0) : static_cast<T>(a % b);
}
template <typename T> static inline T kiln_idiv(T a, T b) {
  if (std::is_signed_v<T> && b == T(-1)) return static_cast<T>(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(a));
  return b == 0 ? T(0) : static_cast<T>(a / b);
}
// Branch-free float math that g++ vectorizes inside loops (the libm calls do not vectorize
// without -ffast-math). Accuracy is within a couple of ulp, like the SIMD math eager uses.
// Kernels build with -ffp-contract=off (a*b + c rounds twice, as in eager); the polynomials fuse
// explicitly where the machine has FMA.
#ifdef __FMA__
#define KILN_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define KILN_FMA(a, b, c) ((a) * (b) + (c))
#endif
static inline float kiln_bits2f(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int32_t kiln_f2bits(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

// 16-bit floats live in memory as their bits (uint16_t) and in registers as float: widened exactly
// at loads, rounded to nearest even (NaN stays NaN, subnormals exact) where eager rounds: each op's
// result, casts, stores. The same bits as c10::Half / c10::BFloat16; branch-free, so loops vectorize.
static inline uint32_t kiln_fbits(float f) { uint32_t i; std::memcpy(&i, &f, 4); return i; }
static inline float kiln_bitsf(uint32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
// std::signbit of a float g++ 12 vectorizes into an invalid instruction (an internal compiler error)
// when the float comes from a bit cast, as a widened 16-bit value does: the sign bit, read directly.
static inline bool kiln_signbit(float x) { return (kiln_fbits(x) >> 31) != 0; }
template <typename T> static inline bool kiln_signbit(T x) { return std::signbit(x); }
// c ? a : b as masks: g++ leaves chains of ?: on integers as branches, which do not vectorize
static inline uint32_t kiln_pick(bool c, uint32_t a, uint32_t b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return (a & m) | (b & ~m);
}
static inline float kiln_h2f(uint16_t h) {
  const uint32_t mag = h & 0x7fffu, sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t normal = (mag << 13) + 0x38000000u;  // exponent bias 15 -> 127
  const uint32_t special = (mag << 13) | 0x7f800000u;  // inf, NaN (payload kept)
  const uint32_t small = kiln_fbits(static_cast<float>(static_cast<int32_t>(mag)) * 5.9604644775390625e-8f);  // mag * 2^-24
  return kiln_bitsf(sign | kiln_pick(mag >= 0x7c00u, special, kiln_pick(mag >= 0x0400u, normal, small)));
}
static inline uint16_t kiln_f2h(float f) {
  const uint32_t x = kiln_fbits(f), a = x & 0x7fffffffu, sign = (x >> 16) & 0x8000u;
  // |f| >= 2^-14: drop 13 mantissa bits to nearest even and rebias (a carry rounds up into the exponent)
  const uint32_t normal = (a + 0x0fffu + ((a >> 13) & 1u) - 0x38000000u) >> 13;
  // |f| < 2^-14: a multiple of 2^-24 (1024 is the smallest normal); float addition rounds |f| + 0.5
  // to that grid, to nearest even
  const uint32_t small = kiln_fbits(kiln_bitsf(a) + 0.5f) - 0x3f000000u;
  const uint32_t finite = kiln_pick(a >= 0x477ff000u, 0x7c00u, kiln_pick(a >= 0x38800000u, normal, small));  // 65520: inf
  return static_cast<uint16_t>(sign | kiln_pick(a > 0x7f800000u, 0x7e00u, finite));
}
static inline float kiln_bf2f(uint16_t h) { return kiln_bitsf(static_cast<uint32_t>(h) << 16); }
static inline uint16_t kiln_f2bf(float f) {
  const uint32_t x = kiln_fbits(f);
  const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;  // to nearest even; overflows into inf
  return static_cast<uint16_t>(kiln_pick((x & 0x7fffffffu) > 0x7f800000u, ((x >> 16) & 0x8000u) | 0x7fc0u, rounded));
}
static inline float kiln_round_h(float f) {  // kiln_h2f(kiln_f2h(f)) in a third of the work: rounds in place
  const uint32_t x = kiln_fbits(f), a = x & 0x7fffffffu;
  const uint32_t normal = (a + 0x0fffu + ((a >> 13) & 1u)) & 0xffffe000u;  // 10 mantissa bits, to nearest even
  const uint32_t small = kiln_fbits((kiln_bitsf(a) + 0.5f) - 0.5f);  // |f| < 2^-14: to the 2^-24 grid
  const uint32_t r = kiln_pick(a >= 0x477ff000u, 0x7f800000u, kiln_pick(a >= 0x38800000u, normal, small));
  return kiln_bitsf((x & 0x80000000u) | kiln_pick(a > 0x7f800000u, a | 0x00400000u, r));  // NaN: quiet
}
static inline float kiln_round_bf(float f) { return kiln_bf2f(kiln_f2bf(f)); }

static inline float kiln_exp(float x) {  // within 1 ulp; subnormal results and overflow to inf as libm
  const float xl = -104.0f < x ? x : -104.0f;  // (NaN becomes -104 here: no NaN reaches the int conversion)
  const float xc = xl < 89.0f ? xl : 89.0f;
  const float n = std::nearbyint(xc * 1.44269504088896341f);
  float r = KILN_FMA(-n, 0.693359375f, xc);  // x - n*ln2 in two parts (the first is exact)
  r = KILN_FMA(-n, -2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = KILN_FMA(p, r, 1.3981999507e-3f);
  p = KILN_FMA(p, r, 8.3334519073e-3f);
  p = KILN_FMA(p, r, 4.1665795894e-2f);
  p = KILN_FMA(p, r, 1.6666665459e-1f);
  p = KILN_FMA(p, r, 5.0000001201e-1f);
  p = KILN_FMA(p, r * r, r) + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;  // 2^n in two steps: no early overflow or flush to zero
  const float y = p * kiln_bits2f((n1 + 127) << 23) * kiln_bits2f((n2 + 127) << 23);  // overflows to inf
  return x != x ? x : (x < -103.972084045410f ? 0.0f : y);
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
  p = KILN_FMA(p, s2, 0.1111111111f);
  p = KILN_FMA(p, s2, 0.1428571429f);
  p = KILN_FMA(p, s2, 0.2f);
  p = KILN_FMA(p, s2, 0.3333333333f);
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
  p = KILN_FMA(p, x, 1.0f / 40320.0f);
  p = KILN_FMA(p, x, 1.0f / 5040.0f);
  p = KILN_FMA(p, x, 1.0f / 720.0f);
  p = KILN_FMA(p, x, 1.0f / 120.0f);
  p = KILN_FMA(p, x, 1.0f / 24.0f);
  p = KILN_FMA(p, x, 1.0f / 6.0f);
  p = KILN_FMA(p, x, 0.5f);
  float small = x + x2 * p;
  float big = kiln_exp(x) - 1.0f;
  return std::copysign(std::fabs(x) < 0.5f ? small : big, x);  // expm1(-0.0) is -0.0; NaN stays NaN
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

static inline float kiln_tanh(float x) {  // within 2 ulp
  const float a = std::fabs(x);
  const float z = a * a;
  float p = 21844.0f / 6081075.0f;  // |x| < 0.4: tanh's Taylor series to x^13
  p = KILN_FMA(p, z, -1382.0f / 155925.0f);
  p = KILN_FMA(p, z, 62.0f / 2835.0f);
  p = KILN_FMA(p, z, -17.0f / 315.0f);
  p = KILN_FMA(p, z, 2.0f / 15.0f);
  p = KILN_FMA(p, z, -1.0f / 3.0f);
  const float small = KILN_FMA(a * z, p, a);
  const float e = kiln_exp(-2.0f * a);  // otherwise (1 - e) / (1 + e), e = exp(-2|x|): no cancellation
  const float y = a < 0.4f ? small : (1.0f - e) / (1.0f + e);
  return std::copysign(y, x);  // NaN stays NaN
}
static inline double kiln_tanh(double x) { return std::tanh(x); }

static inline float kiln_erf(float x) {
  float a = std::fabs(x);
  float a2 = a * a;
  // |x| < 0.5: Taylor series of 2/sqrt(pi) * (x - x^3/3 + x^5/10 - ...)
  float p = -1.0f / 9360.0f;
  p = KILN_FMA(p, a2, 1.0f / 1320.0f);
  p = KILN_FMA(p, a2, -1.0f / 216.0f);
  p = KILN_FMA(p, a2, 1.0f / 42.0f);
  p = KILN_FMA(p, a2, -1.0f / 10.0f);
  p = KILN_FMA(p, a2, 1.0f / 3.0f);
  float small = 1.12837916709551257f * a * (1.0f - a2 * p);
  // otherwise erfc by Chebyshev fitting (relative error < 1.2e-7), erf = 1 - erfc
  float t = 1.0f / (1.0f + 0.5f * a);
  float q = 0.17087277f;
  q = KILN_FMA(q, t, -0.82215223f);
  q = KILN_FMA(q, t, 1.48851587f);
  q = KILN_FMA(q, t, -1.13520398f);
  q = KILN_FMA(q, t, 0.27886807f);
  q = KILN_FMA(q, t, -0.18628806f);
  q = KILN_FMA(q, t, 0.09678418f);
  q = KILN_FMA(q, t, 0.37409196f);
  q = KILN_FMA(q, t, 1.00002368f);
  q = KILN_FMA(q, t, -1.26551223f);
  float big = 1.0f - t * kiln_exp(-a2 + q);
  float y = a < 0.5f ? small : big;
  return x != x ? x : std::copysign(y, x);  // erf(-0.0) is -0.0
}
static inline double kiln_erf(double x) { return std::erf(x); }

// sin/cos/tan: x = k*pi/2 + r with a three-part pi/2 (fma keeps k*p1 exact), |r| <= pi/4, then
// Cephes' minimax polynomials. Within 1.5 ulp for |x| <= 2^19 (checked against double precision
// over every float exponent); larger |x| (and inf) set the kernel's out-of-domain flag instead, and
// the kernel reruns with libm (see KILN_EXACT in render.py).
#ifdef __FMA__
#define KILN_TRIG_FAST true
#else
#define KILN_TRIG_FAST false  // the reduction needs an exact k * pi/2 product: libm only
#endif
static inline int kiln_trig_bad(float x) { return KILN_TRIG_FAST && std::fabs(x) > 262144.0f; }
static inline float kiln_trig_fast(float x, int shift, bool tangent) {
  const float k = std::nearbyint(x * 0.636619772367581343f);
  float r = KILN_FMA(-k, 1.5707963705062866211f, x);
  r = KILN_FMA(-k, -4.3711388286737928865e-08f, r);
  r = KILN_FMA(-k, -1.7151245100059026e-15f, r);
  r = k == 0.0f ? x : r;  // exact then; keeps -0.0 (-0.0 - 0 * p1 is +0.0)
  const int32_t q = static_cast<int32_t>(std::fabs(k) < 1e7f ? k : 0.0f) + shift;  // NaN: no UB
  const float z = r * r;
  const float ps = KILN_FMA(KILN_FMA(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f);
  const float s = r == 0.0f ? r : KILN_FMA(ps * z, r, r);  // sin(-0.0) is -0.0
  const float pc = KILN_FMA(KILN_FMA(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f);
  const float c = KILN_FMA(pc * z, z, KILN_FMA(-0.5f, z, 1.0f));
  if (tangent) return (q & 1) ? -c / s : s / c;
  const float y = (q & 1) ? c : s;
  return (q & 2) ? -y : y;
}
template <bool EXACT> static inline float kiln_sin(float x) {
  if constexpr (EXACT || !KILN_TRIG_FAST) return std::sin(x); else return kiln_trig_fast(x, 0, false);
}
template <bool EXACT> static inline float kiln_cos(float x) {
  if constexpr (EXACT || !KILN_TRIG_FAST) return std::cos(x); else return kiln_trig_fast(x, 1, false);
}
template <bool EXACT> static inline float kiln_tan(float x) {
  if constexpr (EXACT || !KILN_TRIG_FAST) return std::tan(x); else return kiln_trig_fast(x, 0, true);
}
template <bool EXACT> static inline double kiln_sin(double x) { return std::sin(x); }
template <bool EXACT> static inline double kiln_cos(double x) { return std::cos(x); }
template <bool EXACT> static inline double kiln_tan(double x) { return std::tan(x); }
static inline int kiln_trig_bad(double) { return 0; }

// Folding reduction accumulators: n slots (vector lanes + a tail slot, or per-thread partials) into
// slot 0 by halving, so each step is one contiguous, vectorizable loop.
#define KILN_FOLD(NAME, COMBINE)                                            \
  template <typename T> static inline void NAME(int n, T* a) {                 \
    while (n > 1) {                                                            \
      const int h = n / 2;                                                     \
      for (int k = 0; k < h; ++k) { const T x = a[k], y = a[n - h + k]; a[k] = COMBINE; } \
      n -= h;                                                                  \
    }                                                                          \
  }
KILN_FOLD(kiln_fold_sum, x + y)
KILN_FOLD(kiln_fold_prod, x * y)
KILN_FOLD(kiln_fold_max, kiln_max(x, y))
KILN_FOLD(kiln_fold_min, kiln_min(x, y))
KILN_FOLD(kiln_fold_any, x || y)
// argmax/argmin slots hold (value, index); index -1 is an empty slot; ties go to the smaller index.
template <bool MAX, typename T> static inline void kiln_fold_arg(int n, T* v, int64_t* i) {
  for (int k = 1; k < n; ++k) {
    if (i[k] < 0) continue;
    const bool better = MAX ? kiln_gt(v[k], v[0]) : kiln_lt(v[k], v[0]);
    const bool same = v[k] == v[0] || (v[k] != v[k] && v[0] != v[0]);
    if (i[0] < 0 || better || (same && i[k] < i[0])) { v[0] = v[k]; i[0] = i[k]; }
  }
}
// Welford slots hold (mean, m2, count); Chan et al.'s pairwise combination.
template <typename T> static inline void kiln_fold_welford(int n, T* mean, T* m2, int64_t* cnt) {
  for (int k = 1; k < n; ++k) {
    if (cnt[k] == 0) continue;
    if (cnt[0] == 0) { mean[0] = mean[k]; m2[0] = m2[k]; cnt[0] = cnt[k]; continue; }
    const int64_t c = cnt[0] + cnt[k];
    const T d = mean[k] - mean[0];
    const T wk = T(cnt[k]) / T(c);
    mean[0] = mean[0] + d * wk;
    m2[0] = m2[0] + m2[k] + d * d * T(cnt[0]) * wk;
    cnt[0] = c;
  }
}
// Streaming stores: 64 floats from an aligned stack chunk to memory without reading the target's
// cache lines first (a plain store to a line not in cache reads it from DRAM). Unaligned targets
// and machines without AVX take a plain copy. kiln_sfence orders the streamed stores before the
// thread leaves the kernel.
static inline void kiln_stream64(float* dst, const float* src) {
#if defined(__AVX512F__)
  typedef float kiln_v16 __attribute__((vector_size(64)));
  if ((reinterpret_cast<uintptr_t>(dst) & 63) == 0) {
    for (int i = 0; i < 64; i += 16) __builtin_ia32_movntps512(dst + i, *reinterpret_cast<const kiln_v16*>(src + i));
    return;
  }
#elif defined(__AVX__)
  typedef float kiln_v8 __attribute__((vector_size(32)));
  if ((reinterpret_cast<uintptr_t>(dst) & 31) == 0) {
    for (int i = 0; i < 64; i += 8) __builtin_ia32_movntps256(dst + i, *reinterpret_cast<const kiln_v8*>(src + i));
    return;
  }
#endif
  std::memcpy(dst, src, 64 * sizeof(float));
}
static inline void kiln_sfence() {
#if defined(__SSE__)
  __builtin_ia32_sfence();
#endif
}
// Splitting one loop across threads: thread t of nt takes [kiln_chunk(t), kiln_chunk(t + 1)).
#define KILN_MAX_THREADS 64
static inline int kiln_threads() { const int n = omp_get_max_threads(); return n < KILN_MAX_THREADS ? n : KILN_MAX_THREADS; }
static inline int64_t kiln_chunk(int64_t n, int t, int nt, int64_t align) {
  if (t >= nt) return n;
  const int64_t c = n * t / nt;
  return c - c % align;
}
"""
