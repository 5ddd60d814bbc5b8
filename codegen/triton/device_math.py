"""Device functions the generated Triton kernels call for math that triton.language lacks.

Written with core triton.language ops only, so the same kernels run on GPUs and under
TRITON_INTERPRET=1. Formulations are the accurate ones (Kahan's log1p/expm1 tricks).
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
    safe = tl.where(u == 1.0, 2.0, u)
    return tl.where(u == 1.0, x, tl.log(safe) * (x / (safe - 1.0)))


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
    return tl.where(x != x, x, tl.where(x < 0, -y, y))


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
    return tl.where(d > 0.5, f + 1.0, tl.where(d < 0.5, f, tl.where(odd, f + 1.0, f)))


@triton.jit
def sign(x):
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)


@triton.jit
def pow(x, y):  # float pow with torch's special cases for negative and zero bases
    ax = tl.abs(x).to(tl.float64)  # exp2(y * log2|x|) loses ~|y log2 x| ulps in float32: work in float64
    r = tl.exp2(y.to(tl.float64) * tl.log2(tl.where(ax == 0, 1.0, ax))).to(x.dtype)
    y_int = tl.floor(y) == y
    y_odd = y_int & ((y - 2.0 * tl.floor(y * 0.5)) != 0.0)
    neg = tl.where(y_int, tl.where(y_odd, -r, r), float("nan"))
    r = tl.where(x < 0, neg, r)
    r = tl.where(x == 0, tl.where(y > 0, 0.0, tl.where(y == 0, 1.0, float("inf"))), r)
    return tl.where(y == 0, 1.0, r)


@triton.jit
def ipow(base, exp):  # integer power, as torch.pow on integer tensors (square-and-multiply)
    result = base * 0 + 1
    b = base
    e = exp
    for _ in tl.static_range(63):
        result = tl.where((e & 1) != 0, result * b, result)
        b = b * b
        e = e >> 1
    neg = tl.where(base == 1, base * 0 + 1, tl.where(base == -1, tl.where((exp & 1) != 0, base, base * 0 + 1),
                                                      base * 0))
    return tl.where(exp < 0, neg, result)


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
