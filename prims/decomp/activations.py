"""Activation functions -> elementwise prims."""
from __future__ import annotations

import math

import torch

from .promote import P, Promotion, convert, elementwise_dtypes
from .elementwise import clamp_high, clamp_low
from .registry import fallback_call, register

aten = torch.ops.aten


def _float_compute(x):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    return convert(x, compute), result


def _sigmoid(x):
    return P["reciprocal"](P["add"](P["exp"](P["neg"](x)), 1.0))


@register(aten.relu.default)
def relu(x):
    return clamp_low(x, convert(0, x.dtype))  # relu(-0.0) is -0.0, as eager


@register(aten.sigmoid.default)
def sigmoid(x):
    x, result = _float_compute(x)
    return convert(_sigmoid(x), result)


@register(aten.silu.default)
def silu(x):
    x, result = _float_compute(x)
    return convert(P["mul"](x, _sigmoid(x)), result)


@register(aten.gelu.default)
def gelu(x, approximate="none"):
    x, result = _float_compute(x)
    if approximate == "tanh":
        inner = P["mul"](P["add"](x, P["mul"](P["mul"](P["mul"](x, x), x), 0.044715)), math.sqrt(2 / math.pi))
        y = P["mul"](P["mul"](x, 0.5), P["add"](P["tanh"](inner), 1.0))
    else:
        y = P["mul"](P["mul"](x, 0.5), P["add"](P["erf"](P["mul"](x, math.sqrt(0.5))), 1.0))  # M_SQRT1_2, as eager and gelu_backward
    return convert(y, result)


@register(aten.elu.default)
def elu(x, alpha=1, scale=1, input_scale=1):
    x, result = _float_compute(x)
    neg = P["mul"](P["expm1"](P["mul"](x, float(input_scale))), float(alpha))
    return convert(P["mul"](P["where"](P["gt"](x, 0.0), x, neg), float(scale)), result)


@register(aten.celu.default)
def celu(x, alpha=1.0):
    x, result = _float_compute(x)
    neg = P["mul"](P["expm1"](P["div"](x, float(alpha))), float(alpha))
    return convert(P["where"](P["gt"](x, 0.0), x, neg), result)


@register(aten.hardtanh.default)
def hardtanh(x, min_val=-1, max_val=1):
    lo, hi = convert(min_val, x.dtype), convert(max_val, x.dtype)
    return clamp_high(clamp_low(x, lo), hi)


@register(aten.leaky_relu.default)
def leaky_relu(x, negative_slope=0.01):
    return P["where"](P["gt"](x, convert(0, x.dtype)), x, P["mul"](x, convert(negative_slope, x.dtype)))


@register(aten.hardsigmoid.default)
def hardsigmoid(x):
    x, result = _float_compute(x)
    return convert(P["div"](P["minimum"](P["maximum"](P["add"](x, 3.0), 0.0), 6.0), 6.0), result)


@register(aten.hardswish.default)
def hardswish(x):
    x, result = _float_compute(x)
    return convert(P["div"](P["mul"](x, P["minimum"](P["maximum"](P["add"](x, 3.0), 0.0), 6.0)), 6.0), result)


def _softplus(x, beta, threshold):
    bx = P["mul"](x, float(beta))
    soft = P["div"](P["log1p"](P["exp"](bx)), float(beta))
    return P["where"](P["gt"](bx, float(threshold)), x, soft)


@register(aten.softplus.default)
def softplus(x, beta=1, threshold=20):
    x, result = _float_compute(x)
    return convert(_softplus(x, beta, threshold), result)


@register(aten.mish.default)
def mish(x):
    x, result = _float_compute(x)
    return convert(P["mul"](x, P["tanh"](_softplus(x, 1, 20))), result)


@register(aten.log_sigmoid_forward.default)
def log_sigmoid_forward(x):
    x, result = _float_compute(x)
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)); the buffer is exp(-|x|), as eager's CPU kernel
    # writes it: its log_sigmoid_backward reads it (a training graph saves it)
    z = P["exp"](P["neg"](P["abs"](x)))
    return convert(P["sub"](P["minimum"](x, 0.0), P["log1p"](z)), result), convert(z, result)


@register(aten.log_sigmoid_backward.default)
def log_sigmoid_backward(grad, x, buffer):
    """Eager's CPU kernel: grad * ((x < 0 ? 1 : 0) - (x < 0 ? 1 : -1) * z / (1 + z)), z the buffer."""
    if x.dtype.is_complex or tuple(buffer.shape) != tuple(x.shape):
        return fallback_call(aten.log_sigmoid_backward.default, grad, x, buffer)
    compute, result = elementwise_dtypes(grad, x)
    g, x, z = convert(grad, compute), convert(x, compute), convert(buffer, compute)
    max_deriv = convert(P["lt"](x, 0.0), compute)  # 1 or 0
    sign = P["sub"](P["mul"](max_deriv, 2.0), 1.0)  # 1 or -1
    d = P["sub"](max_deriv, P["mul"](sign, P["div"](z, P["add"](z, 1.0))))
    return convert(P["mul"](d, g), result)


@register(aten.threshold.default)
def threshold(x, threshold, value):
    return P["where"](P["le"](x, convert(threshold, x.dtype)), convert(value, x.dtype), x)


@register(aten.softshrink.default)
def softshrink(x, lambd=0.5):
    lam = convert(lambd, x.dtype)
    y = P["where"](P["gt"](x, lam), P["sub"](x, lam), P["where"](P["lt"](x, -lam), P["add"](x, lam), 0.0))
    return y


@register(aten.hardshrink.default)
def hardshrink(x, lambd=0.5):
    lam = convert(lambd, x.dtype)
    return P["where"](P["logical_or"](P["gt"](x, lam), P["lt"](x, -lam)), x, 0.0)


@register(aten.glu.default)
def glu(x, dim=-1):
    from .views import slice_

    d = dim + x.ndim if dim < 0 else dim
    half = x.shape[d] // 2
    a, b = slice_(x, d, 0, half), slice_(x, d, half, x.shape[d])
    return P["mul"](a, _sigmoid(b))


@register(aten._prelu_kernel.default)
def prelu(x, weight):
    from .promote import broadcast_to

    w = broadcast_to(weight, x.shape)
    return P["where"](P["gt"](x, convert(0, x.dtype)), x, P["mul"](x, w))


@register(aten.native_dropout_backward.default)
def native_dropout_backward(grad, mask, scale):
    from .elementwise import _binary

    mul = _binary("mul", Promotion.DEFAULT)  # eager: grad * (mask.type_as(grad) * scale), with promotion
    return mul(grad, mul(convert(mask, grad.dtype), float(scale)))


# --- losses: reduction 0 = none, 1 = mean, 2 = sum ------------------------------------------------


def _reduce_loss(loss, reduction):
    from .reductions import mean, sum_

    return loss if reduction == 0 else (mean(loss) if reduction == 1 else sum_(loss))


def _loss_args(a, b):
    from .promote import elementwise_args

    (a, b), result, _ = elementwise_args(a, b, how=Promotion.INT_TO_FLOAT)
    return a, b, result


@register(aten.mse_loss.default)
def mse_loss(x, target, reduction=1):
    x, t, result = _loss_args(x, target)
    d = P["sub"](x, t)
    return convert(_reduce_loss(P["mul"](d, d), reduction), result)


@register(aten.smooth_l1_loss.default)
def smooth_l1_loss(x, target, reduction=1, beta=1.0):
    x, t, result = _loss_args(x, target)
    d = P["abs"](P["sub"](x, t))
    if beta == 0:
        loss = d
    else:
        loss = P["where"](P["lt"](d, float(beta)), P["div"](P["mul"](P["mul"](d, d), 0.5), float(beta)),
                          P["sub"](d, 0.5 * beta))
    return convert(_reduce_loss(loss, reduction), result)


@register(aten.huber_loss.default)
def huber_loss(x, target, reduction=1, delta=1.0):
    x, t, result = _loss_args(x, target)
    d = P["abs"](P["sub"](x, t))
    loss = P["where"](P["lt"](d, float(delta)), P["mul"](P["mul"](d, d), 0.5),
                      P["mul"](P["sub"](d, 0.5 * delta), float(delta)))
    return convert(_reduce_loss(loss, reduction), result)


@register(aten.soft_margin_loss.default)
def soft_margin_loss(x, target, reduction=1):
    x, t, result = _loss_args(x, target)
    loss = P["log1p"](P["exp"](P["neg"](P["mul"](x, t))))
    return convert(_reduce_loss(loss, reduction), result)


@register(aten.binary_cross_entropy.default)
def binary_cross_entropy(x, target, weight=None, reduction=1):
    x, t, result = _loss_args(x, target)
    log_x = P["maximum"](P["log"](x), -100.0)  # eager clamps the logs at -100
    log_1mx = P["maximum"](P["log1p"](P["neg"](x)), -100.0)
    loss = P["neg"](P["add"](P["mul"](t, log_x), P["mul"](P["sub"](1.0, t), log_1mx)))
    if weight is not None:
        from .promote import broadcast_to

        loss = P["mul"](loss, broadcast_to(convert(weight, loss.dtype), loss.shape))
    return convert(_reduce_loss(loss, reduction), result)


@register(aten.binary_cross_entropy_with_logits.default)
def bce_with_logits(x, target, weight=None, pos_weight=None, reduction=1):
    from .promote import broadcast_to

    x, t, result = _loss_args(x, target)
    # (1 - t) * x + (1 + (pw - 1) * t) * softplus(-x), with softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)
    sp = P["add"](P["log1p"](P["exp"](P["neg"](P["abs"](x)))), P["maximum"](P["neg"](x), 0.0))
    if pos_weight is not None:
        pw = broadcast_to(convert(pos_weight, x.dtype), x.shape)
        coef = P["add"](P["mul"](P["sub"](pw, 1.0), t), 1.0)
        loss = P["add"](P["mul"](P["sub"](1.0, t), x), P["mul"](coef, sp))
    else:
        loss = P["add"](P["mul"](P["sub"](1.0, t), x), sp)
    if weight is not None:
        loss = P["mul"](loss, broadcast_to(convert(weight, x.dtype), x.shape))
    return convert(_reduce_loss(loss, reduction), result)
