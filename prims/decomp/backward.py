"""Backward ATen ops that autograd's derivative formulas emit (a training graph's backward half) ->
prims, with eager's formulas (aten/src/ATen/native/cpu): 16-bit floats compute in float32 and round
once, as eager's CPU kernels do. Complex inputs keep their ATen op (their formulas conjugate)."""
from __future__ import annotations

import math

import torch

from .promote import P, Promotion, broadcast_to, convert, elementwise_dtypes
from .reductions import _dims, _keep
from .registry import call_aten, fallback_call, register

aten = torch.ops.aten


def _float(*xs, how=Promotion.DEFAULT):
    """(compute dtype, result dtype, the tensors in the compute dtype)."""
    compute, result = elementwise_dtypes(*xs, how=how)
    return compute, result, [convert(x, compute) for x in xs]


def _complex(*xs) -> bool:
    return any(x is not None and x.dtype.is_complex for x in xs)


@register(aten.threshold_backward.default)
def threshold_backward(grad, x, threshold):
    _, result = elementwise_dtypes(grad, x)
    return P["where"](P["le"](x, convert(threshold, x.dtype)), convert(0, result), convert(grad, result))


@register(aten.tanh_backward.default)
def tanh_backward(grad, out):
    if _complex(grad, out):
        return fallback_call(aten.tanh_backward.default, grad, out)
    _, result, (g, y) = _float(grad, out)
    return convert(P["mul"](g, P["sub"](1.0, P["mul"](y, y))), result)


@register(aten.sigmoid_backward.default)
def sigmoid_backward(grad, out):
    if _complex(grad, out):
        return fallback_call(aten.sigmoid_backward.default, grad, out)
    _, result, (g, y) = _float(grad, out)
    return convert(P["mul"](P["mul"](g, P["sub"](1.0, y)), y), result)


@register(aten.gelu_backward.default)
def gelu_backward(grad, x, *, approximate="none"):
    _, result, (g, x) = _float(grad, x)
    if approximate == "tanh":
        beta, kappa = math.sqrt(2) * (2 / math.sqrt(math.pi)) * 0.5, 0.044715
        x_sq = P["mul"](x, x)
        inner = P["mul"](P["add"](x, P["mul"](P["mul"](x_sq, x), kappa)), beta)
        t = P["tanh"](inner)
        left, right = P["mul"](x, 0.5), P["add"](t, 1.0)
        right_derivative = P["mul"](P["mul"](left, P["sub"](1.0, P["mul"](t, t))),
                                    P["mul"](P["add"](P["mul"](x_sq, 3 * kappa), 1.0), beta))
        return convert(P["mul"](g, P["add"](P["mul"](right, 0.5), right_derivative)), result)
    cdf = P["mul"](P["add"](P["erf"](P["mul"](x, math.sqrt(0.5))), 1.0), 0.5)
    pdf = P["mul"](P["exp"](P["mul"](P["mul"](x, x), -0.5)), (2 / math.sqrt(math.pi)) * math.sqrt(0.5) * 0.5)
    return convert(P["mul"](g, P["add"](cdf, P["mul"](x, pdf))), result)


@register(aten.silu_backward.default)
def silu_backward(grad, x):
    if _complex(grad, x):
        return fallback_call(aten.silu_backward.default, grad, x)
    _, result, (g, x) = _float(grad, x)
    s = P["reciprocal"](P["add"](P["exp"](P["neg"](x)), 1.0))
    return convert(P["mul"](P["mul"](g, s), P["add"](P["mul"](x, P["sub"](1.0, s)), 1.0)), result)


@register(aten.log_sigmoid_backward.default)
def log_sigmoid_backward(grad, x, buffer):
    """Eager's CPU kernel: (x < 0 ? 1 : 0) - (x < 0 ? 1 : -1) * z / (1 + z), z = exp(-|x|) (the buffer)."""
    if _complex(grad, x) or tuple(buffer.shape) != tuple(x.shape):
        return fallback_call(aten.log_sigmoid_backward.default, grad, x, buffer)
    _, result, (g, x, z) = _float(grad, x, buffer)
    max_deriv = convert(P["lt"](x, 0.0), x.dtype)  # 1 or 0
    sign = P["sub"](P["mul"](max_deriv, 2.0), 1.0)  # 1 or -1
    d = P["sub"](max_deriv, P["mul"](sign, P["div"](z, P["add"](z, 1.0))))
    return convert(P["mul"](d, g), result)


@register(aten._log_softmax_backward_data.default)
def log_softmax_backward(grad, out, dim, input_dtype):
    compute, _ = elementwise_dtypes(grad, out, how=Promotion.INT_TO_FLOAT)  # 16-bit: float math, one rounding
    grad, out = convert(grad, compute), convert(out, compute)
    dims = _dims(out, dim)
    s = broadcast_to(_keep(P["sum"](grad, dims), out, dims), out.shape)
    return convert(P["sub"](grad, P["mul"](P["exp"](out), s)), input_dtype)


@register(aten.mse_loss_backward.default)
def mse_loss_backward(grad, x, target, reduction):
    if _complex(grad, x, target):
        return fallback_call(aten.mse_loss_backward.default, grad, x, target, reduction)
    _, result, (g, x, t) = _float(grad, x, target)
    norm = 2.0 / x.numel() if reduction == 1 and x.numel() else 2.0  # (empty: an empty result)
    shape = tuple(torch.broadcast_shapes(tuple(x.shape), tuple(t.shape), tuple(g.shape)))
    diff = P["sub"](broadcast_to(x, shape), broadcast_to(t, shape))
    return convert(P["mul"](P["mul"](diff, norm), broadcast_to(g, shape)), result)


@register(aten.slice_backward.default)
def slice_backward(grad, input_sizes, dim, start, end, step):
    zeros = P["full"](tuple(input_sizes), convert(0, grad.dtype), dtype=grad.dtype, device=grad.device)
    return call_aten(aten.slice_scatter.default, zeros, grad, dim, start, end, step)


@register(aten.native_layer_norm_backward.default)
def layer_norm_backward(grad_out, x, normalized_shape, mean, rstd, weight, bias, output_mask):
    compute, _ = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    axis = x.ndim - len(normalized_shape)
    inner, outer = tuple(range(axis, x.ndim)), tuple(range(axis))
    n = math.prod(normalized_shape)
    g, xc = convert(grad_out, compute), convert(x, compute)
    mean = broadcast_to(_stat(convert(mean, compute), x, axis), x.shape)
    rstd = broadcast_to(_stat(convert(rstd, compute), x, axis), x.shape)
    x_hat = P["mul"](P["sub"](xc, mean), rstd)
    w = None if weight is None else broadcast_to(convert(weight, compute), x.shape)
    g_hat = g if w is None else P["mul"](g, w)
    grad_input = grad_weight = grad_bias = None
    if output_mask[0]:
        a = P["mul"](g_hat, float(n))
        b = broadcast_to(_keep(P["sum"](g_hat, inner), x, inner), x.shape)
        c = P["mul"](x_hat, broadcast_to(_keep(P["sum"](P["mul"](g_hat, x_hat), inner), x, inner), x.shape))
        scale = 1.0 / n if n else 0.0  # n == 0: an empty grad_input
        grad_input = convert(P["mul"](P["mul"](rstd, scale), P["sub"](P["sub"](a, b), c)), x.dtype)
    if output_mask[1] and weight is not None:
        grad_weight = convert(_sum_outer(P["mul"](g, x_hat), outer), weight.dtype)
    if output_mask[2] and bias is not None:
        grad_bias = convert(_sum_outer(g, outer), bias.dtype)
    return grad_input, grad_weight, grad_bias


def _stat(stat, x, axis):
    """mean/rstd (outer shape, maybe with trailing 1s) as rank x.ndim with size-1 inner dims."""
    shape = tuple(x.shape[:axis]) + (1,) * (x.ndim - axis)
    return stat if tuple(stat.shape) == shape else P["reshape"](stat, shape)


def _sum_outer(y, outer):
    return P["sum"](y, outer) if outer else y
