"""Device functions the generated Triton kernels call for math that triton.language lacks.

Written with core triton.language ops only, so the same kernels run on GPUs and under
TRITON_INTERPRET=1. Formulations are the accurate ones (Kahan's log1p/expm1 tricks), and each
gives C's (eager's) special values: inf, -inf, NaN, the sign of zero. Float constants that must
keep float64 precision are added to a tensor (`tl.full(x.shape, 0, x.dtype) + c`): a bare Python float in
Triton is a float32 constant.
"""
import triton
import triton.language as tl


@triton.jit
def maximum(a, b):  # NaN-propagating, as torch.maximum
    return tl.where(a != a, a, tl.where(b != b, b, tl.where(a > b, a, b)))


@triton.jit
def minimum(a, b):
    return tl.where(a != a, a, tl.where(b != b, b, tl.where(a < b, a, b)))


@triton.jit
def log1p(x):
    u = 1.0 + x
    safe = tl.where((u == 1.0) | (u == float("inf")), 2.0, u)
    y = tl.where(u == 1.0, x, tl.log(safe) * (x / (safe - 1.0)))
    return tl.where(u == float("inf"), u, y)  # log1p(inf) = inf (inf / inf would be NaN)


@triton.jit
def expm1(x):
    u = tl.exp(x)
    lu = tl.log(u)
    safe_lu = tl.where(lu == 0.0, 1.0, lu)
    near = (u - 1.0) * (x / safe_lu)
    return tl.where(u == 1.0, x, tl.where(u - 1.0 == -1.0, -1.0, tl.where(tl.abs(x) < 0.5, near, u - 1.0)))


@triton.jit
def tanh(x):
    t = expm1(-2.0 * tl.abs(x))
    y = -t / (2.0 + t)
    return tl.where((x != x) | (x == 0), x, tl.where(x < 0, -y, y))  # NaN and both zeros as they are


@triton.jit
def tan(x):
    return tl.sin(x) / tl.cos(x)


@triton.jit
def trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def rint(x):  # round half to even
    f = tl.floor(x)
    d = x - f
    odd = (f - 2.0 * tl.floor(f * 0.5)) != 0.0
    r = tl.where(d > 0.5, f + 1.0, tl.where(d < 0.5, f, tl.where(odd, f + 1.0, f)))
    return tl.where(r == 0, x * 0.0, r)  # a zero keeps x's sign: rint(-0.3) is -0.0


@triton.jit
def sign(x):
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)


@triton.jit
def pow(x, y):  # float pow with C's (eager's) special cases: zero, infinite and negative bases, NaN
    ax = tl.abs(x).to(tl.float64)  # exp2(y * log2|x|) loses ~|y log2 x| ulps in float32: work in float64
    yd = y.to(tl.float64)
    r = tl.exp2(yd * tl.log2(tl.where(ax == 0, 1.0, ax)))  # |x| ** y; also right for |x| = inf
    y_int = tl.floor(y) == y  # also for y = +-inf
    # Integer exponents below 128 by square-and-multiply: exact whenever the result is representable
    # (10.0 ** 2 must be 100, not 99.99999999999997), as libm's pow.
    e = tl.where(y_int & (tl.abs(yd) < 128), tl.abs(yd), 0.0).to(tl.int32)
    b = ax
    p = (ax != ax).to(tl.float64) * 0.0 + 1.0  # ones (ax * 0 would be NaN for inf)
    for _ in tl.static_range(7):
        p = tl.where((e & 1) != 0, p * b, p)
        b = b * b
        e = e >> 1
    r = tl.where(y_int & (tl.abs(yd) < 128), tl.where(yd < 0, 1.0 / p, p), r).to(x.dtype)
    r = tl.where(ax == 0, tl.where(y > 0, 0.0, float("inf")), r)
    y_odd = y_int & (tl.abs(y) < float("inf")) & ((y - 2.0 * tl.floor(y * 0.5)) != 0.0)
    r = tl.where(signbit(x) & y_odd, -r, r)  # odd powers keep the sign, also of -0.0 and -inf
    r = tl.where((x < 0) & (ax < float("inf")) & ~y_int, float("nan"), r)  # a negative base, fractional y
    r = tl.where(y != y, y, r)
    r = tl.where((x == 1) | ((x == -1) & (tl.abs(y) == float("inf"))), 1.0, r)  # 1 ** NaN is 1
    return tl.where(y == 0, 1.0, r)  # NaN ** 0 is 1


@triton.jit
def ipow(base, exp):  # integer power, as torch.pow on integer tensors (square-and-multiply)
    result = base * 0 + 1
    b = base
    e = exp
    for _ in tl.static_range(63):
        result = tl.where((e & 1) != 0, result * b, result)
        b = b * b
        e = e >> 1
    if base.dtype.is_int_signed():  # decided at compile time: unsigned exponents are never negative
        one = base * 0 + 1
        neg = tl.where(base == 1, one, tl.where(base == -1, tl.where((exp & 1) != 0, base, one), base * 0))
        result = tl.where(exp < 0, neg, result)
    return result


@triton.jit
def argmax_combine(v0, i0, v1, i1):  # NaN wins, then the larger, then the first index
    take1 = (v1 > v0) | ((v1 != v1) & (v0 == v0)) | ((v1 == v0) & (i1 < i0)) | ((v1 != v1) & (v0 != v0) & (i1 < i0))
    return tl.where(take1, v1, v0), tl.where(take1, i1, i0)


@triton.jit
def argmin_combine(v0, i0, v1, i1):
    take1 = (v1 < v0) | ((v1 != v1) & (v0 == v0)) | ((v1 == v0) & (i1 < i0)) | ((v1 != v1) & (v0 != v0) & (i1 < i0))
    return tl.where(take1, v1, v0), tl.where(take1, i1, i0)


@triton.jit
def sum_combine(a, b):
    return a + b


@triton.jit
def prod_combine(a, b):
    return a * b


@triton.jit
def or_combine(a, b):
    return a | b


@triton.jit
def welford_combine(mean_a, m2_a, n_a, mean_b, m2_b, n_b):
    n = n_a + n_b
    d = mean_b - mean_a
    wb = tl.where(n == 0, 0.0, n_b / tl.where(n == 0, 1.0, n))
    return mean_a + d * wb, m2_a + m2_b + d * d * n_a * wb, n


# Row reductions (axis 1 of an [XBLOCK, RBLOCK] tile). They combine with triton.language's own
# combine functions, which Triton's interpreter recognises and runs as one numpy call (any other
# combine function runs once per element in Python). Those ignore NaN, as on GPUs (maxnum), so
# NaN propagation is added with a count of NaNs per row.
@triton.jit
def row_sum(x):
    return tl.reduce(x, 1, tl.standard._sum_combine)


@triton.jit
def row_prod(x):
    return tl.reduce(x, 1, prod_combine)


@triton.jit
def row_max(x):  # NaN when the row has one, as torch.amax
    m = tl.reduce(x, 1, tl.standard._elementwise_max)
    if x.dtype.is_floating():  # decided at compile time
        m = tl.where(tl.reduce((x != x).to(tl.int32), 1, tl.standard._sum_combine) > 0, float("nan"), m)
    return m


@triton.jit
def row_min(x):
    m = tl.reduce(x, 1, tl.standard._elementwise_min)
    if x.dtype.is_floating():
        m = tl.where(tl.reduce((x != x).to(tl.int32), 1, tl.standard._sum_combine) > 0, float("nan"), m)
    return m


@triton.jit
def row_welford_m2(mean, m2, n):  # lanes' (mean, m2, count) -> the row's m2 (Chan et al., from sums)
    count = row_sum(n)
    avg = row_sum(n * mean) / tl.where(count == 0, 1.0, count)
    d = mean - avg[:, None]
    return row_sum(m2) + row_sum(n * d * d)


@triton.jit
def _first_index_of(v, i, best):  # smallest index among lanes holding the row's winner `best`
    b = best[:, None]
    hit = (v == b) | ((v != v) & (b != b))
    return tl.reduce(tl.where(hit, i, 9223372036854775807), 1, tl.standard._elementwise_min)


@triton.jit
def row_argmax(v, i):  # lanes hold (value, index of its first occurrence): first index of the max / first NaN
    return _first_index_of(v, i, row_max(v))


@triton.jit
def row_argmin(v, i):
    return _first_index_of(v, i, row_min(v))


@triton.jit
def from_bfloat16(x):  # exact, subnormals included (Triton's interpreter flushes them to zero)
    return (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)


@triton.jit
def to_bfloat16(x):  # round to nearest even, as torch (Triton's interpreter truncates)
    bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    bits = tl.where(x != x, bits | 0x400000, rounded)  # NaN stays a (quiet) NaN
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def idiv(a, b):  # signed integer division truncating (C semantics); INT_MIN / -1 wraps to INT_MIN
    minus_one = b == -1
    return tl.where(minus_one, -a, a // tl.where(minus_one, 1, b))


@triton.jit
def imod(a, b):  # signed integer fmod (C semantics, sign of a); x % -1 is 0 (also for INT_MIN)
    minus_one = b == -1
    return tl.where(minus_one, a * 0, a % tl.where(minus_one, 1, b))


@triton.jit
def shl(a, b):  # torch's left shift: counts outside [0, bits) give 0
    ok = (b >= 0) & (b < a.dtype.primitive_bitwidth)
    return tl.where(ok, a << tl.where(ok, b, b * 0).to(a.dtype), a * 0)


@triton.jit
def shr(a, b):  # torch's right shift: counts outside [0, bits) fill with the sign
    top = a.dtype.primitive_bitwidth - a.dtype.is_int_signed()
    ok = (b >= 0) & (b < top)
    return a >> tl.where(ok, b, b * 0 + top).to(a.dtype)


@triton.jit
def signbit(x):
    if x.dtype == tl.float64:
        r = x.to(tl.int64, bitcast=True) < 0
    else:
        r = x.to(tl.int32, bitcast=True) < 0
    return r


@triton.jit
def erfc(x):  # 1 - erf near 0; Numerical Recipes' erfcc (relative error < 1.2e-7) elsewhere
    a = tl.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    q = 0.17087277
    q = q * t - 0.82215223
    q = q * t + 1.48851587
    q = q * t - 1.13520398
    q = q * t + 0.27886807
    q = q * t - 0.18628806
    q = q * t + 0.09678418
    q = q * t + 0.37409196
    q = q * t + 1.00002368
    q = q * t - 1.26551223
    big = t * tl.exp(-a * a + q)
    big = tl.where(x < 0, 2.0 - big, big)
    return tl.where(a < 0.5, 1.0 - tl.erf(x), big)


@triton.jit
def _atan_pos(x):  # arctangent of x >= 0 (Cephes' rational approximation, range-reduced)
    big = x > 2.414213562373095
    mid = (x > 0.66) & (x <= 2.414213562373095)
    safe = tl.where(x == 0, 1.0, x)
    z0 = tl.where(big, -1.0 / safe, tl.where(mid, (x - 1.0) / (x + 1.0), x))
    zero = tl.full(x.shape, 0, x.dtype)  # tl.zeros_like is a jit function the interpreter cannot nest
    y0 = tl.where(big, zero + 1.5707963267948966, tl.where(mid, zero + 0.7853981633974483, zero))
    z = z0 * z0
    p = ((((-8.750608600031904e-1 * z - 1.6157537187333652e1) * z - 7.50085579231470e1) * z
          - 1.2288666844901362e2) * z - 6.485021904942025e1)
    q = (((((z + 2.4858464901423062e1) * z + 1.6502700983169885e2) * z + 4.3288106049129027e2) * z
          + 4.8539039963591370e2) * z + 1.9455065714826140e2)
    r = z0 * (z * p / q) + z0
    r = r + tl.where(big, zero + 6.123233995736766e-17, tl.where(mid, zero + 3.061616997868383e-17, zero))
    return y0 + r


@triton.jit
def atan2(y, x):  # C's atan2: signed zeros and infinities give the right quadrant
    ax = tl.abs(x)
    ay = tl.abs(y)
    both_zero = (ax == 0) & (ay == 0)
    both_inf = (ax == float("inf")) & (ay == float("inf"))
    ratio = tl.where(both_zero, 0.0, tl.where(both_inf, 1.0, ay / tl.where(ax == 0, 0.0, ax)))
    r = _atan_pos(ratio).to(x.dtype)
    r = tl.where(signbit(x), 3.141592653589793 - r, r)
    return tl.where(signbit(y), -r, r)


@triton.jit
def check_divisor(b, err, mask):  # b where b != 0; else 1, and err[0] = 1 (integer division by zero)
    zero = b == 0
    tl.store(err, tl.full([1], 1, tl.int32), mask & zero)
    return tl.where(zero, 1, b)


@triton.jit
def check_index(i, n, err, mask):  # i where 0 <= i < n; else 0, and err[0] = 1 (err: a pointer block)
    bad = (i < 0) | (i >= n)
    tl.store(err, tl.full([1], 1, tl.int32), mask & bad)
    return tl.where(bad, 0, i)
