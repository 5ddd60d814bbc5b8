"""Reductions and the normalisations built on them -> reduction prims."""
from __future__ import annotations

import torch

from ..symbolic import is_symbolic
from ..meta import numel
from .promote import P, Promotion, broadcast_to, convert, elementwise_dtypes
from ..errors import UnsupportedGraph
from .registry import CPU_DTYPE_DIFFERS, register

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
    y = convert(P["div"](total, _number(count)), out)
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


def _number(count):
    """An element count as the scalar a mean divides by: a float, or a symbolic size as it is."""
    return count if is_symbolic(count) else float(count)


def _var(x, dims, correction, keepdim, acc=None):
    """(var, mean with kept dims), both in `acc` (default: the compute dtype): two passes."""
    compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    x = convert(x, acc or compute)
    count = numel([x.shape[d] for d in dims])
    mean_kept = _keep(P["div"](P["sum"](x, dims), _number(count)), x, dims)
    centered = P["sub"](x, broadcast_to(mean_kept, x.shape))
    var = P["div"](P["sum"](P["mul"](centered, centered), dims), _number(max(count - correction, 0)))
    return (_keep(var, x, dims) if keepdim else var), mean_kept


def _var_acc(x):
    """The dtype eager's var/std accumulate in: double on CPU (its Welford kernels and two-pass
    all-reduce keep double sums even for float32 and 16-bit inputs, so the squared deviations of
    values near 1e30 do not overflow, and std, their root, is finite); opmath on other devices."""
    compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    return torch.float64 if x.device.type == "cpu" and compute.is_floating_point else compute


def _var_op(x, dim, correction, keepdim, take_sqrt):
    """(var or std, mean) in eager's accumulation dtype, each rounded to x's dtype once at the end."""
    correction = 1 if correction is None else correction
    dims = _dims(x, dim)
    v, m = _var(x, dims, correction, keepdim, acc=_var_acc(x))
    m = m if keepdim else P["reshape"](m, v.shape)
    return convert(P["sqrt"](v) if take_sqrt else v, x.dtype), convert(m, x.dtype)


@register(aten.var.correction)
def var(x, dim=None, *, correction=None, keepdim=False):
    return _var_op(x, dim, correction, keepdim, take_sqrt=False)[0]


@register(aten.var_mean.correction)
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    return _var_op(x, dim, correction, keepdim, take_sqrt=False)


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
    stats = compute if _mixed_layer_norm(x, result, weight, bias) else result
    return convert(y, result), convert(mean_kept, stats), convert(rstd, stats)


CPU_DTYPE_DIFFERS[aten.native_layer_norm.default] = (1, 2)  # mean, rstd: see _mixed_layer_norm


def _mixed_layer_norm(x, result, weight, bias) -> bool:
    """A 16-bit input with float32 weight or bias (autocast's layer_norm): eager's CPU kernel keeps
    mean and rstd in float32 (its native_layer_norm_backward then requires them so), where the meta
    function says the input's dtype."""
    return x.device.type == "cpu" and result in (torch.float16, torch.bfloat16) and \
        any(p is not None and p.dtype == torch.float32 for p in (weight, bias))


@register(aten.std.correction)
def std(x, dim=None, *, correction=None, keepdim=False):
    return _var_op(x, dim, correction, keepdim, take_sqrt=True)[0]


@register(aten.std_mean.correction)
def std_mean(x, dim=None, *, correction=None, keepdim=False):
    return _var_op(x, dim, correction, keepdim, take_sqrt=True)


def _any(x, dims, keepdim):
    b = x if x.dtype == torch.bool else P["ne"](x, convert(0, x.dtype))
    if x.numel() == 0:
        shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape)) if keepdim else \
            tuple(s for i, s in enumerate(x.shape) if i not in dims)
        return b, shape
    return b, None


def _bool_reduce(prim, empty_value):
    def decomp(x, dim=None, keepdim=False):
        dims = _dims(x, dim)
        b = x if x.dtype == torch.bool else P["ne"](x, convert(0, x.dtype))
        if b.ndim and any(x.shape[d] == 0 for d in dims):  # an empty reduction: any -> False, all -> True
            shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape)) if keepdim else \
                tuple(s for i, s in enumerate(x.shape) if i not in dims)
            out = P["full"](shape, empty_value, dtype=torch.bool, device=x.device)
        else:
            out = _reduce(prim, b, dims, keepdim, torch.bool, torch.bool)
        return convert(out, torch.uint8) if x.dtype == torch.uint8 else out

    return decomp


register(aten.any.default, aten.any.dim, aten.any.dims)(_bool_reduce("amax", False))
register(aten.all.default, aten.all.dim, aten.all.dims)(_bool_reduce("amin", True))


@register(aten.count_nonzero.default, aten.count_nonzero.dim_IntList)
def count_nonzero(x, dim=None):
    nz = convert(P["ne"](x, convert(0, x.dtype)), torch.int64)
    return P["sum"](nz, _dims(x, dim))


@register(aten.nansum.default)
def nansum(x, dim=None, keepdim=False, *, dtype=None):
    if x.dtype.is_floating_point:
        x = P["where"](P["isnan"](x), convert(0, x.dtype), x)
    return sum_(x, dim, keepdim, dtype=dtype)


@register(aten.aminmax.default)
def aminmax(x, *, dim=None, keepdim=False):
    dims = _dims(x, dim)
    if dim is None and keepdim:
        lo, hi = P["amin"](x, dims), P["amax"](x, dims)
        shape = (1,) * x.ndim
        return P["reshape"](lo, shape), P["reshape"](hi, shape)
    return _reduce("amin", x, dims, keepdim, x.dtype, x.dtype), _reduce("amax", x, dims, keepdim, x.dtype, x.dtype)


@register(aten.logsumexp.default)
def logsumexp(x, dim, keepdim=False):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    x = convert(x, compute)
    dims = _dims(x, dim)
    if x.numel() == 0:
        return convert(_reduce_empty(x, dims, keepdim, -float("inf")), result)
    m = P["amax"](x, dims)
    m = P["where"](P["isinf"](m), 0.0, m)  # all -inf rows (and +inf ones) must not give inf - inf
    mk = broadcast_to(_keep(m, x, dims), x.shape)
    s = P["log"](P["sum"](P["exp"](P["sub"](x, mk)), dims))
    y = P["add"](s, m)
    return convert(_keep(y, x, dims) if keepdim else y, result)


def _reduce_empty(x, dims, keepdim, value):
    shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape)) if keepdim else \
        tuple(s for i, s in enumerate(x.shape) if i not in dims)
    return P["full"](shape, value, dtype=x.dtype, device=x.device)


@register(aten.linalg_vector_norm.default)
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    compute = dtype or (x.dtype if x.dtype.is_floating_point else torch.get_default_dtype())
    acc = torch.float32 if compute in (torch.float16, torch.bfloat16) else compute
    dims = _dims(x, dim)
    a = P["abs"](convert(x, acc)) if x.dtype != torch.bool else convert(x, acc)
    if x.numel() == 0 and ord in (float("inf"), -float("inf")):
        raise UnsupportedGraph("inf-norm of an empty tensor raises in eager")
    if ord == float("inf"):
        y = P["amax"](a, dims)
    elif ord == -float("inf"):
        y = P["amin"](a, dims)
    elif ord == 0:
        y = P["sum"](convert(P["ne"](a, 0.0), acc), dims)
    elif ord == 1:
        y = P["sum"](a, dims)
    elif ord == 2:
        y = P["sqrt"](P["sum"](P["mul"](a, a), dims))
    else:
        y = P["pow"](P["sum"](P["pow"](a, float(ord)), dims), 1.0 / float(ord))
    y = convert(y, compute)
    return _keep(y, x, dims) if keepdim else y


@register(aten.norm.Scalar, aten.norm.ScalarOpt_dim, aten.norm.ScalarOpt_dim_dtype, aten.norm.ScalarOpt_dtype)
def norm(x, p=2, dim=None, keepdim=False, *, dtype=None):
    if isinstance(dim, torch.dtype):  # ScalarOpt_dtype: norm(x, p, *, dtype)
        dim, dtype = None, dim
    return vector_norm(x, 2 if p is None else p, dim, keepdim, dtype=dtype)


@register(aten.dist.default)
def dist(a, b, p=2):
    from .elementwise import sub

    return vector_norm(sub(a, b), p)


@register(aten.renorm.default)
def renorm(x, p, dim, maxnorm):
    dim = dim + x.ndim if dim < 0 else dim
    dims = tuple(d for d in range(x.ndim) if d != dim)
    n = vector_norm(x, p, dims, True)
    factor = P["where"](P["gt"](n, float(maxnorm)), P["div"](float(maxnorm), P["add"](n, 1e-7)), 1.0)
    return P["mul"](x, broadcast_to(factor, x.shape))


@register(aten._safe_softmax.default)
def safe_softmax(x, dim, dtype=None):
    y = softmax(convert(x, dtype) if dtype is not None else x, dim)
    dims = _dims(x, dim)
    if x.numel() == 0:
        return y
    all_masked = P["amin"](P["eq"](convert(x, y.dtype), -float("inf")), dims)  # rows of -inf only give 0, not NaN
    return P["where"](broadcast_to(_keep(all_masked, x, dims), x.shape), 0.0, y)


@register(aten._softmax_backward_data.default)
def softmax_backward(grad, out, dim, input_dtype):
    compute, _ = elementwise_dtypes(grad, out, how=Promotion.INT_TO_FLOAT)  # 16-bit: float math, one rounding
    grad, out = convert(grad, compute), convert(out, compute)
    dims = _dims(out, dim)
    gy = P["mul"](grad, out)
    s = broadcast_to(_keep(P["sum"](gy, dims), out, dims), out.shape)
    return convert(P["sub"](gy, P["mul"](out, s)), input_dtype)


@register(aten.native_group_norm.default)
def group_norm(x, weight, bias, n, c, hw, group, eps):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    xg = P["reshape"](convert(x, compute), (n, group, (c // group) * hw))
    var, mean_kept = _var(xg, (2,), 0, keepdim=True)
    rstd = P["rsqrt"](P["add"](var, float(eps)))
    y = P["mul"](P["sub"](xg, broadcast_to(mean_kept, xg.shape)), broadcast_to(rstd, xg.shape))
    y = P["reshape"](y, (n, c, hw))
    if weight is not None:
        y = P["mul"](y, P["broadcast_in_dim"](convert(weight, compute), (n, c, hw), (1,)))
    if bias is not None:
        y = P["add"](y, P["broadcast_in_dim"](convert(bias, compute), (n, c, hw), (1,)))
    y = P["reshape"](y, tuple(x.shape))
    return convert(y, result), convert(P["reshape"](mean_kept, (n, group)), result), \
        convert(P["reshape"](rstd, (n, group)), result)


@register(aten.native_batch_norm.default)
def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    if training and running_mean is not None:
        raise UnsupportedGraph("batch_norm in training mode updates its running stats in place "
                               "(functionalization is not implemented here)")
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    stats = result if x.device.type == "cpu" else compute  # eager's saved mean/rstd: the input's dtype on CPU only
    xc = convert(x, compute)
    c = x.shape[1]
    dims = tuple(d for d in range(x.ndim) if d != 1)
    if training:
        var, mean_kept = _var(xc, dims, 0, keepdim=True)
        mean = P["reshape"](mean_kept, (c,))
        rstd = P["rsqrt"](P["add"](P["reshape"](var, (c,)), float(eps)))
        save_mean, save_rstd = convert(mean, stats), convert(rstd, stats)
    else:
        mean = convert(running_mean, compute)
        rstd = P["rsqrt"](P["add"](convert(running_var, compute), float(eps)))
        save_mean = save_rstd = P["full"]((0,), 0, dtype=stats, device=x.device)
    per_c = lambda v: P["broadcast_in_dim"](v, tuple(x.shape), (1,))  # noqa: E731
    y = P["mul"](P["sub"](xc, per_c(mean)), per_c(rstd))
    if weight is not None:
        y = P["mul"](y, per_c(convert(weight, compute)))
    if bias is not None:
        y = P["add"](y, per_c(convert(bias, compute)))
    return convert(y, result), save_mean, save_rstd


@register(aten._native_batch_norm_legit_functional.default)
def batch_norm_functional(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """batch_norm with its running-stat updates as results (functionalization's form of it)."""
    if not training:
        out, save_mean, save_rstd = batch_norm(x, weight, bias, running_mean, running_var, False, momentum, eps)
        compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)  # torch's meta: the stats in float32
        return out, save_mean, save_rstd, convert(running_mean, compute), convert(running_var, compute)
    out, mean, rstd = batch_norm(x, weight, bias, None, None, True, momentum, eps)
    n = numel([s for d, s in enumerate(x.shape) if d != 1])
    dims = tuple(d for d in range(x.ndim) if d != 1)
    compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    # the running stats follow the float32 mean and variance (16-bit inputs), as eager's do
    var_kept, mean_kept = _var(convert(x, compute), dims, 1, keepdim=True)
    var_unbiased = P["reshape"](var_kept, (x.shape[1],)) if n > 1 else \
        P["full"]((x.shape[1],), float("nan"), dtype=compute, device=x.device)
    mean_c = P["reshape"](mean_kept, (x.shape[1],))
    new_mean = P["add"](P["mul"](convert(running_mean, compute), 1.0 - momentum), P["mul"](mean_c, float(momentum)))
    new_var = P["add"](P["mul"](convert(running_var, compute), 1.0 - momentum), P["mul"](var_unbiased, float(momentum)))
    # the updated stats in torch's meta dtypes (float32 for 16-bit stats; eager's are 16-bit, but the copy
    # back into the running stats rounds them the same)
    return (out, mean, rstd, convert(new_mean, torch.promote_types(compute, running_mean.dtype)),
            convert(new_var, torch.promote_types(compute, running_var.dtype)))


@register(aten.embedding_renorm.default)
def embedding_renorm(weight, indices, max_norm, norm_type):
    """Rows of weight named in indices whose norm exceeds max_norm are scaled down to it (as eager: / (norm + 1e-7))."""
    rows = weight.shape[0]
    idx = P["reshape"](convert(indices, torch.int64), (indices.numel(),))
    pos = P["iota"](rows, start=0, step=1, dtype=torch.int64, device=weight.device)
    if indices.numel():
        named = P["amax"](P["eq"](P["broadcast_in_dim"](pos, (rows, indices.numel()), (0,)),
                                  P["broadcast_in_dim"](idx, (rows, indices.numel()), (1,))), (1,))
    else:
        named = P["full"]((rows,), False, dtype=torch.bool, device=weight.device)
    norms = vector_norm(weight, norm_type, (1,))
    scale = P["where"](P["logical_and"](named, P["gt"](norms, float(max_norm))),
                       P["div"](float(max_norm), P["add"](norms, 1e-7)), 1.0)
    return P["mul"](weight, P["broadcast_in_dim"](convert(scale, weight.dtype), tuple(weight.shape), (0,)))


@register(aten._native_batch_norm_legit.no_stats)
def batch_norm_no_stats(x, weight, bias, training, momentum, eps):
    return batch_norm(x, weight, bias, None, None, training, momentum, eps)


@register(aten._batch_norm_with_update_functional.default)
def batch_norm_with_update(x, weight, bias, running_mean, running_var, momentum, eps):
    out, mean, rstd, new_mean, new_var = batch_norm_functional(x, weight, bias, running_mean, running_var, True,
                                                               momentum, eps)
    reserve = P["full"]((0,), 0, dtype=torch.uint8, device=x.device)  # the cuDNN workspace: empty on CPU
    return out, mean, rstd, reserve, new_mean, new_var
