"""Reductions and the normalisations built on them -> reduction prims."""
from __future__ import annotations

import torch

from ..meta import numel
from .promote import P, Promotion, broadcast_to, convert, elementwise_dtypes
from .registry import register

aten = torch.ops.aten


def _dims(x, dims):
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return tuple(range(x.ndim))
    dims = (dims,) if isinstance(dims, int) else dims
    return tuple(sorted({d + x.ndim if d < 0 else d for d in dims})) if x.ndim else ()


def _keep(y, x, dims):
    """Reshape a reduced result back to rank x.ndim with size-1 reduced dims."""
    shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    return y if tuple(y.shape) == shape else P["reshape"](y, shape)


def _reduce(prim, x, dims, keepdim, acc_dtype, out_dtype):
    y = convert(P[prim](convert(x, acc_dtype), dims), out_dtype)
    return _keep(y, x, dims) if keepdim else y


def _sum_dtypes(x, dtype):
    if dtype is not None:
        out = dtype
    elif x.dtype.is_floating_point or x.dtype.is_complex:
        out = x.dtype
    else:
        out = torch.int64
    acc = torch.float32 if out in (torch.float16, torch.bfloat16) else out
    return acc, out


@register(aten.sum.dim_IntList, aten.sum.default)
def sum_(x, dim=None, keepdim=False, *, dtype=None):
    acc, out = _sum_dtypes(x, dtype)
    return _reduce("sum", x, _dims(x, dim), keepdim, acc, out)


@register(aten.prod.dim_int, aten.prod.default)
def prod(x, dim=None, keepdim=False, *, dtype=None):
    acc, out = _sum_dtypes(x, dtype)
    return _reduce("prod", x, _dims(x, dim), keepdim, acc, out)


@register(aten.mean.dim, aten.mean.default)
def mean(x, dim=None, keepdim=False, *, dtype=None):
    out = dtype or x.dtype
    acc = torch.float32 if out in (torch.float16, torch.bfloat16) else out
    dims = _dims(x, dim)
    count = numel([x.shape[d] for d in dims])
    total = P["sum"](convert(x, acc), dims)
    y = convert(P["div"](total, float(count)), out)
    return _keep(y, x, dims) if keepdim else y


def _minmax(prim):
    def decomp(x, dim=(), keepdim=False):
        return _reduce(prim, x, _dims(x, dim), keepdim, x.dtype, x.dtype)

    return decomp


register(aten.amax.default)(_minmax("amax"))
register(aten.amin.default)(_minmax("amin"))
register(aten.max.default)(lambda x: _minmax("amax")(x))
register(aten.min.default)(lambda x: _minmax("amin")(x))


def _arg(prim):
    def decomp(x, dim=None, keepdim=False):
        if dim is None:
            flat = P["reshape"](x, (x.numel(),))
            y = P[prim](flat, (0,))
            return P["reshape"](y, (1,) * x.ndim) if keepdim else y
        dims = _dims(x, dim)
        return _keep(P[prim](x, dims), x, dims) if keepdim else P[prim](x, dims)

    return decomp


register(aten.argmax.default)(_arg("argmax"))
register(aten.argmin.default)(_arg("argmin"))


def _max_with_indices(value_prim, index_prim):
    def decomp(x, dim, keepdim=False):
        # max.dim takes bool though argmax does not: find the index on a uint8 copy (same order).
        keys = convert(x, torch.uint8) if x.dtype == torch.bool else x
        return _minmax(value_prim)(x, dim, keepdim), _arg(index_prim)(keys, dim, keepdim)

    return decomp


register(aten.max.dim)(_max_with_indices("amax", "argmax"))
register(aten.min.dim)(_max_with_indices("amin", "argmin"))


def _var(x, dims, correction, keepdim):
    """(var, mean with kept dims), both in the compute dtype: two passes, as eager."""
    compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    x = convert(x, compute)
    count = numel([x.shape[d] for d in dims])
    mean_kept = _keep(P["div"](P["sum"](x, dims), float(count)), x, dims)
    centered = P["sub"](x, broadcast_to(mean_kept, x.shape))
    var = P["div"](P["sum"](P["mul"](centered, centered), dims), float(max(count - correction, 0)))
    return (_keep(var, x, dims) if keepdim else var), mean_kept


@register(aten.var.correction)
def var(x, dim=None, *, correction=None, keepdim=False):
    correction = 1 if correction is None else correction
    v, _ = _var(x, _dims(x, dim), correction, keepdim)
    return convert(v, x.dtype)


@register(aten.var_mean.correction)
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    correction = 1 if correction is None else correction
    dims = _dims(x, dim)
    v, m = _var(x, dims, correction, keepdim)
    m = m if keepdim else P["reshape"](m, v.shape)
    return convert(v, x.dtype), convert(m, x.dtype)


@register(aten._softmax.default)
def softmax(x, dim, half_to_float=False):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    result = torch.float32 if half_to_float else result
    x = convert(x, compute)
    if x.numel() == 0:
        return convert(x, result)  # nothing to normalise (amax refuses an empty dim, eager does not care)
    dims = _dims(x, dim)
    m = broadcast_to(_keep(P["amax"](x, dims), x, dims), x.shape)
    e = P["exp"](P["sub"](x, m))
    s = broadcast_to(_keep(P["sum"](e, dims), x, dims), x.shape)
    return convert(P["div"](e, s), result)


@register(aten._log_softmax.default)
def log_softmax(x, dim, half_to_float=False):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    result = torch.float32 if half_to_float else result
    x = convert(x, compute)
    if x.numel() == 0:
        return convert(x, result)  # as in softmax
    dims = _dims(x, dim)
    shifted = P["sub"](x, broadcast_to(_keep(P["amax"](x, dims), x, dims), x.shape))
    lse = P["log"](P["sum"](P["exp"](shifted), dims))
    return convert(P["sub"](shifted, broadcast_to(_keep(lse, x, dims), x.shape)), result)


@register(aten.native_layer_norm.default)
def layer_norm(x, normalized_shape, weight, bias, eps):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    x = convert(x, compute)
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    var, mean_kept = _var(x, dims, 0, keepdim=True)
    rstd = P["rsqrt"](P["add"](var, float(eps)))
    y = P["mul"](P["sub"](x, broadcast_to(mean_kept, x.shape)), broadcast_to(rstd, x.shape))
    if weight is not None:
        y = P["mul"](y, broadcast_to(convert(weight, compute), x.shape))
    if bias is not None:
        y = P["add"](y, broadcast_to(convert(bias, compute), x.shape))
    return convert(y, result), convert(mean_kept, result), convert(rstd, result)
