"""Complex exp, log, sqrt, where, mean and constants on (real, imag) pairs (decomp/complex.py), with eager's special
values: eager's CPU kernels call C99's cexp/clog/csqrt (glibc), whose Annex G cases are spelled out here.
complex64 computes in float64 and rounds once (glibc scales cexpf/clogf near overflow: exp(89+1.57j)
and log(3e38+3e38j) are finite), complex128 in float64 with the same scaling for |z| past 2^1000.
"""
from __future__ import annotations

import math

import torch

from ..builder import Value
from .complex import PAIR_DTYPE, _cdiv, _covered, _where, from_parts, parts, register
from .complex_views import sum_
from .promote import convert
from .registry import call_aten

aten = torch.ops.aten
INF, NAN = float("inf"), float("nan")


def _unary_parts(meta, z):
    """(re, im) of z in float64, or None when the op is not covered."""
    if not _covered(meta) or not isinstance(z, Value) or z.dtype != meta.dtype:
        return None
    re, im = parts(z, PAIR_DTYPE[meta.dtype])
    return convert(re, torch.float64), convert(im, torch.float64)


def _op(op, *args):
    return call_aten(op, *args)


@register(aten.exp.default)
def exp(meta, z):
    """exp(x) * (cos y, sin y), and C99's cases: y = ±0 gives (exp(x), y) (exp(inf+0j) = inf+0j,
    exp(nan+0j) = nan+0j); x = ±inf with y inf or nan gives (inf, nan) or (0, ±0)."""
    xy = _unary_parts(meta, z)
    if xy is None:
        return None
    x, y = xy
    e = _op(aten.exp.default, x)
    rr, ri = _op(aten.mul.Tensor, e, _op(aten.cos.default, y)), _op(aten.mul.Tensor, e, _op(aten.sin.default, y))
    zero_y = _op(aten.eq.Scalar, y, 0.0)
    inf_x = _op(aten.isinf.default, x)
    special = _op(aten.logical_and.default, inf_x, _op(aten.logical_not.default, _op(aten.isfinite.default, y)))
    plus = _op(aten.gt.Scalar, x, 0.0)
    signed_zero = _op(aten.copysign.Tensor, _op(aten.zeros_like.default, y), y)
    re = _where(zero_y, e, _where(special, _where(plus, INF, 0.0, torch.float64), rr, torch.float64), torch.float64)
    im = _where(zero_y, y, _where(special, _where(plus, NAN, signed_zero, torch.float64), ri, torch.float64),
                torch.float64)
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(convert(re, dtype), convert(im, dtype), meta)


_BIG = 2.0 ** 1000


@register(aten.log.default)
def log(meta, z):
    """(log|z|, atan2(y, x)): hypot keeps (nan, inf) at inf and (-0, -0) at (-inf, -pi), as clog.
    |z| past 2^1000 is scaled by 1/4 first, so log(1.7e308+1.7e308j) stays finite; near |z| = 1
    (max part in [0.5, 2], min part under 0.5) log1p keeps log(1+1e-4j)'s 5e-9 accurate."""
    xy = _unary_parts(meta, z)
    if xy is None:
        return None
    x, y = xy
    plain = _op(aten.log.default, _op(aten.hypot.default, x, y))
    quarter = [_op(aten.mul.Tensor, v, 0.25) for v in (x, y)]
    scaled = _op(aten.add.Tensor, _op(aten.log.default, _op(aten.hypot.default, *quarter)), math.log(4.0))
    ax, ay = _op(aten.abs.default, x), _op(aten.abs.default, y)
    m, s = _op(aten.maximum.default, ax, ay), _op(aten.minimum.default, ax, ay)
    # |z| near 1: 0.5 * log1p((m - 1)(m + 1) + s^2), as clog (m - 1 is exact there)
    near = _op(aten.mul.Tensor, _op(aten.log1p.default, _op(aten.add.Tensor, _op(
        aten.mul.Tensor, _op(aten.sub.Tensor, m, 1.0), _op(aten.add.Tensor, m, 1.0)), _op(aten.mul.Tensor, s, s))), 0.5)
    is_near = _op(aten.logical_and.default, _op(aten.ge.Scalar, m, 0.5), _op(aten.le.Scalar, m, 2.0))
    is_near = _op(aten.logical_and.default, is_near, _op(aten.lt.Scalar, s, 0.5))
    big = _op(aten.gt.Scalar, m, _BIG)
    re = _where(big, scaled, _where(is_near, near, plain, torch.float64), torch.float64)
    im = _op(aten.atan2.default, y, x)
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(convert(re, dtype), convert(im, dtype), meta)


@register(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def where(meta, cond, a, b):
    """Each part selected on its own (-0.0 and nan parts kept as they are)."""
    if not _covered(meta) or not isinstance(cond, Value) or any(
            isinstance(v, Value) and v.dtype.is_complex and v.dtype not in PAIR_DTYPE for v in (a, b)):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    (ar, ai), (br, bi) = parts(a, dtype), parts(b, dtype)
    return from_parts(_where(cond, ar, br, dtype), _where(cond, ai, bi, dtype), meta)


@register(aten.mean.dim, aten.mean.default)
def mean(meta, z, dim=None, keepdim=False, *, dtype=None):
    """Eager's CPU mean: the sum, then a complex division by the count (an empty mean is nan+nanj)."""
    if not _covered(meta) or not isinstance(z, Value) or z.dtype not in PAIR_DTYPE:
        return None
    total = sum_(meta, z, dim, keepdim, dtype=dtype)
    if total is None:
        return None
    dims = range(z.ndim) if not dim or not z.ndim else [d % z.ndim for d in dim]
    count = 1
    for d in dims:
        count *= z.shape[d]
    pd = PAIR_DTYPE[meta.dtype]
    return from_parts(*_cdiv(parts(total, pd), (float(count), 0.0), pd), meta)


def _constant(value_of_args):
    """A creation op filling its complex result with one number (a Python scalar, cast as eager casts
    it: its parts rounded to the pair dtype)."""
    def fn(meta, *args, **kwargs):
        if not _covered(meta):
            return None
        value = value_of_args(*args)
        if isinstance(value, Value) or isinstance(value, bool):
            return None
        return from_parts(*parts(value, PAIR_DTYPE[meta.dtype]), meta)

    return fn


register(aten.scalar_tensor.default)(_constant(lambda s: s))
register(aten.full.default)(_constant(lambda size, value: value))
register(aten.full_like.default)(_constant(lambda x, value: value))
register(aten.zeros.default, aten.zeros_like.default)(_constant(lambda *_: 0.0))
register(aten.ones.default, aten.ones_like.default)(_constant(lambda *_: 1.0))


@register(aten.sqrt.default)
def sqrt(meta, z):
    """glibc's csqrt: y = ±0 (x not nan) gives (sqrt(x), y) or (0, ±sqrt(-x)); otherwise, with d = |z|,
    x > 0: r = sqrt((d + x) / 2), s = y / 2r; x <= 0: s = sqrt((d - x) / 2), r = |y / 2s|; the
    result (r, copysign(s, y)). C99's cases: y = ±inf gives (inf, y); x = -inf gives (0 or nan,
    ±inf); x = +inf gives (inf, ±0 or nan); other nans give (nan, nan). |z| past 2^1000 is
    computed on z/4 and doubled."""
    xy = _unary_parts(meta, z)
    if xy is None:
        return None
    x, y = xy
    f64 = torch.float64
    big = _op(aten.gt.Scalar, _op(aten.maximum.default, _op(aten.abs.default, x), _op(aten.abs.default, y)), _BIG)
    sx, sy = (_where(big, _op(aten.mul.Tensor, v, 0.25), v, f64) for v in (x, y))
    d = _op(aten.hypot.default, sx, sy)
    half = lambda v: _op(aten.mul.Tensor, v, 0.5)  # noqa: E731
    r_pos = _op(aten.sqrt.default, half(_op(aten.add.Tensor, d, sx)))
    s_pos = half(_op(aten.div.Tensor, sy, r_pos))
    s_neg = _op(aten.sqrt.default, half(_op(aten.sub.Tensor, d, sx)))
    r_neg = _op(aten.abs.default, half(_op(aten.div.Tensor, sy, s_neg)))
    pos = _op(aten.gt.Scalar, sx, 0.0)
    r = _where(big, _op(aten.mul.Tensor, _where(pos, r_pos, r_neg, f64), 2.0), _where(pos, r_pos, r_neg, f64), f64)
    s = _where(big, _op(aten.mul.Tensor, _where(pos, s_pos, s_neg, f64), 2.0), _where(pos, s_pos, s_neg, f64), f64)
    # y = ±0 (x finite or not): exact square roots of the real part
    zero_y = _op(aten.logical_and.default, _op(aten.eq.Scalar, y, 0.0),
                 _op(aten.logical_not.default, _op(aten.isnan.default, x)))  # sqrt(nan+0j) is nan+nanj
    neg_x = _op(aten.lt.Scalar, x, 0.0)
    root = _op(aten.sqrt.default, _op(aten.abs.default, x))
    r = _where(zero_y, _where(neg_x, 0.0, root, f64), r, f64)
    s = _where(zero_y, _where(neg_x, root, 0.0, f64), s, f64)
    im = _op(aten.copysign.Tensor, s, y)
    # x = ±inf with finite or nan y
    nan_y = _op(aten.isnan.default, y)
    inf_x = _op(aten.isinf.default, x)
    r = _where(inf_x, _where(neg_x, _where(nan_y, NAN, 0.0, f64), INF, f64), r, f64)
    im = _where(inf_x, _where(neg_x, _op(aten.copysign.Tensor, _filled_like(y, INF), y),
                              _where(nan_y, NAN, _op(aten.copysign.Tensor, _op(aten.zeros_like.default, y), y), f64),
                              f64), im, f64)
    # y = ±inf wins over everything, nan x included
    inf_y = _op(aten.isinf.default, y)
    r = _where(inf_y, INF, r, f64)
    im = _where(inf_y, y, im, f64)
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(convert(r, dtype), convert(im, dtype), meta)


def _filled_like(v, value):
    return _op(aten.full_like.default, v, value)
