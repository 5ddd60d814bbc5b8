"""Backward ATen ops (what autograd's derivative formulas call, met in training's joint graph) ->
prims, with eager's CPU formulas, computed in float32 for 16-bit floats and rounded once
(`_softmax_backward_data` lives with softmax, in reductions.py). Complex, empty and otherwise unusual
inputs run as they are (an op-level fallback)."""
from __future__ import annotations

import math

import torch

from ..meta import numel
from .promote import P, Promotion, broadcast_to, convert, elementwise_dtypes
from .reductions import _keep
from .registry import fallback_call, register

aten = torch.ops.aten


def _unusual(*tensors) -> bool:
    return any(t is not None and (t.dtype.is_complex or not t.dtype.is_floating_point) for t in tensors)


def _compute(*tensors):
    """The float dtype to compute in, and each tensor converted to it."""
    compute, _ = elementwise_dtypes(tensors[0], how=Promotion.INT_TO_FLOAT)
    return compute, [convert(t, compute) for t in tensors]


@register(aten.tanh_backward.default)
def tanh_backward(grad, y):
    if _unusual(grad, y):
        return fallback_call(aten.tanh_backward.default, grad, y)
    _, (g, y) = _compute(grad, y)
    return convert(P["mul"](g, P["sub"](1.0, P["mul"](y, y))), grad.dtype)


@register(aten.sigmoid_backward.default)
def sigmoid_backward(grad, y):
    if _unusual(grad, y):
        return fallback_call(aten.sigmoid_backward.default, grad, y)
    _, (g, y) = _compute(grad, y)
    return convert(P["mul"](P["mul"](g, P["sub"](1.0, y)), y), grad.dtype)


@register(aten.threshold_backward.default)
def threshold_backward(grad, x, threshold):
    if _unusual(grad) or tuple(grad.shape) != tuple(x.shape):
        return fallback_call(aten.threshold_backward.default, grad, x, threshold)
    return P["where"](P["le"](x, threshold), convert(0, grad.dtype), grad)


@register(aten.silu_backward.default)
def silu_backward(grad, x):
    if _unusual(grad, x):
        return fallback_call(aten.silu_backward.default, grad, x)
    _, (g, x) = _compute(grad, x)
    s = P["reciprocal"](P["add"](P["exp"](P["neg"](x)), 1.0))
    return convert(P["mul"](P["mul"](g, s), P["add"](P["mul"](x, P["sub"](1.0, s)), 1.0)), grad.dtype)


@register(aten.gelu_backward.default)
def gelu_backward(grad, x, approximate="none"):
    if _unusual(grad, x):
        return fallback_call(aten.gelu_backward.default, grad, x, approximate=approximate)
    _, (g, x) = _compute(grad, x)
    if approximate == "tanh":  # eager's formula (GeluKernel.cpp)
        beta, kappa = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5, 0.044715
        x_sq = P["mul"](x, x)
        inner = P["mul"](P["add"](x, P["mul"](P["mul"](x_sq, x), kappa)), beta)
        t = P["tanh"](inner)
        left_derivative = P["mul"](P["add"](t, 1.0), 0.5)
        right_derivative = P["mul"](P["mul"](P["sub"](1.0, P["mul"](t, t)), beta),
                                    P["add"](P["mul"](x_sq, 3.0 * kappa), 1.0))
        d = P["add"](left_derivative, P["mul"](P["mul"](x, 0.5), right_derivative))
    else:
        cdf = P["mul"](P["add"](P["erf"](P["mul"](x, math.sqrt(0.5))), 1.0), 0.5)
        pdf = P["mul"](P["exp"](P["mul"](P["mul"](x, x), -0.5)), 1.0 / math.sqrt(2.0 * math.pi))
        d = P["add"](cdf, P["mul"](x, pdf))
    return convert(P["mul"](g, d), grad.dtype)


def _dim(x, dim):
    return dim + x.ndim if dim < 0 else dim


@register(aten._log_softmax_backward_data.default)
def log_softmax_backward(grad, out, dim, input_dtype):
    if _unusual(grad, out) or grad.ndim == 0 or numel(grad.shape) == 0:
        return fallback_call(aten._log_softmax_backward_data.default, grad, out, dim, input_dtype)
    _, (g, y) = _compute(grad, out)
    dims = (_dim(g, dim),)
    s = broadcast_to(_keep(P["sum"](g, dims), g, dims), g.shape)
    return convert(P["sub"](g, P["mul"](P["exp"](y), s)), input_dtype)


_REDUCTION_NORM = {0: lambda n: 2.0, 1: lambda n: 2.0 / n, 2: lambda n: 2.0}  # none, mean, sum


@register(aten.mse_loss_backward.default)
def mse_loss_backward(grad, x, target, reduction):
    if _unusual(grad, x, target) or tuple(x.shape) != tuple(target.shape) or numel(x.shape) == 0:
        return fallback_call(aten.mse_loss_backward.default, grad, x, target, reduction)
    _, (g, x, t) = _compute(grad, x, target)
    norm = _REDUCTION_NORM[reduction](numel(x.shape))
    return convert(P["mul"](P["mul"](P["sub"](x, t), norm), broadcast_to(g, x.shape)), grad.dtype)


@register(aten.native_layer_norm_backward.default)
def layer_norm_backward(grad_out, x, normalized_shape, mean, rstd, weight, bias, output_mask):
    if _unusual(grad_out, x, weight) or numel(x.shape) == 0:
        return fallback_call(aten.native_layer_norm_backward.default, grad_out, x, normalized_shape, mean, rstd,
                             weight, bias, output_mask)
    axis = x.ndim - len(normalized_shape)
    inner, outer = tuple(range(axis, x.ndim)), tuple(range(axis))
    n = float(numel(x.shape[axis:]))
    _, (g, xc, mean, rstd) = _compute(grad_out, x, mean, rstd)
    shape = tuple(x.shape)
    x_hat = P["mul"](P["sub"](xc, broadcast_to(mean, shape)), broadcast_to(rstd, shape))
    w = None if weight is None else broadcast_to(convert(weight, g.dtype), shape)
    g_hat = g if w is None else P["mul"](g, w)
    d_input = d_weight = d_bias = None
    if output_mask[0]:  # eager's CPU formulation (LayerNormKernel.cpp): dx = rstd * g_hat + b * x + c
        ds = _keep(P["sum"](P["mul"](g_hat, xc), inner), xc, inner)
        db = _keep(P["sum"](g_hat, inner), xc, inner)
        a = rstd if tuple(rstd.shape) == tuple(ds.shape) else P["reshape"](rstd, tuple(ds.shape))
        m = mean if tuple(mean.shape) == tuple(ds.shape) else P["reshape"](mean, tuple(ds.shape))
        b = P["mul"](P["mul"](P["mul"](P["mul"](P["sub"](P["mul"](db, m), ds), a), a), a), 1.0 / n)
        c = P["sub"](P["mul"](P["neg"](b), m), P["mul"](P["mul"](db, a), 1.0 / n))
        d = P["add"](P["add"](P["mul"](broadcast_to(a, shape), g_hat), P["mul"](broadcast_to(b, shape), xc)),
                     broadcast_to(c, shape))
        d_input = convert(d, x.dtype)
    if output_mask[1] and weight is not None:
        d_weight = convert(_sum_to(P["mul"](g, x_hat), outer), weight.dtype)
    if output_mask[2] and bias is not None:
        d_bias = convert(_sum_to(g, outer), bias.dtype)
    return d_input, d_weight, d_bias


def _sum_to(v, dims):
    return P["sum"](v, dims) if dims else v


@register(aten.native_batch_norm_backward.default)
def batch_norm_backward(grad_out, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                        output_mask):
    if _unusual(grad_out, x, weight) or x.ndim < 2 or numel(x.shape) == 0 or (
            train and (save_mean is None or save_invstd is None)) or (
            not train and (running_mean is None or running_var is None)):
        return fallback_call(aten.native_batch_norm_backward.default, grad_out, x, weight, running_mean, running_var,
                             save_mean, save_invstd, train, eps, output_mask)
    shape = tuple(x.shape)
    axes = tuple(d for d in range(x.ndim) if d != 1)
    compute, (g, xc) = _compute(grad_out, x)
    if train:
        mean, invstd = convert(save_mean, compute), convert(save_invstd, compute)
    else:
        mean = convert(running_mean, compute)
        invstd = P["rsqrt"](P["add"](convert(running_var, compute), float(eps)))

    def per_channel(v):  # [C] -> x's shape
        return P["broadcast_in_dim"](v, shape, (1,))
    norm = 1.0 / (numel(shape) / shape[1])
    centered = P["sub"](xc, per_channel(mean))
    g_sum = P["sum"](g, axes)
    dot = P["sum"](P["mul"](g, centered), axes)
    scale = invstd if weight is None else P["mul"](invstd, convert(weight, compute))
    d_input = d_weight = d_bias = None
    if output_mask[0]:
        if train:
            proj_scale = P["mul"](P["mul"](P["mul"](dot, norm), invstd), invstd)
            proj = P["mul"](centered, per_channel(proj_scale))
            d = P["sub"](P["sub"](g, proj), per_channel(P["mul"](g_sum, norm)))
            d_input = convert(P["mul"](d, per_channel(scale)), x.dtype)
        else:
            d_input = convert(P["mul"](g, per_channel(scale)), x.dtype)
    if output_mask[1]:
        d_weight = convert(P["mul"](dot, invstd), x.dtype if weight is None else weight.dtype)
    if output_mask[2]:
        d_bias = convert(g_sum, x.dtype if weight is None else weight.dtype)
    return d_input, d_weight, d_bias


@register(aten.nll_loss_backward.default)
def nll_loss_backward(grad, x, target, weight, reduction, ignore_index, total_weight):
    """grad_input[i, target[i]] = weight[target[i]] * -(grad / total_weight for a mean), else 0, as
    eager's CPU kernel; a one-hot select, pointwise over the (N, C) result."""
    if _unusual(grad, x, weight) or x.ndim not in (1, 2) or numel(x.shape) == 0:
        return fallback_call(aten.nll_loss_backward.default, grad, x, target, weight, reduction, ignore_index,
                             total_weight)
    shape = tuple(x.shape)
    classes = shape[-1]
    g = P["div"](grad, total_weight) if reduction == 1 else grad
    d = P["neg"](g)
    if reduction == 0 and x.ndim == 2:
        d = P["broadcast_in_dim"](d, shape, (0,))
    else:
        d = broadcast_to(P["reshape"](d, ()) if d.ndim else d, shape)
    t = P["broadcast_in_dim"](target, shape, (0,)) if x.ndim == 2 else broadcast_to(target, shape)
    cls = P["broadcast_in_dim"](P["iota"](classes, start=0, step=1, dtype=target.dtype, device=x.device), shape,
                                (x.ndim - 1,))
    hit = P["logical_and"](P["eq"](t, cls), P["ne"](t, ignore_index))
    value = d if weight is None else P["mul"](P["broadcast_in_dim"](convert(weight, d.dtype), shape, (x.ndim - 1,)), d)
    return convert(P["where"](hit, value, convert(0, d.dtype)), x.dtype)
