"""Gradients of the piecewise activations in activations.py (the backward ATen ops autograd emits for
them in a training graph) -> prims, with eager's CPU formulas: 16-bit floats compute in float32 and
round once; NaN inputs take the branch eager's comparisons give them (every comparison is false).
hardtanh, elu, hardswish, softshrink and hardshrink backward stay ATen ops: eager's own CPU kernels
disagree on NaN between their vectorized body and their scalar tail (hardtanh_backward: 0 in the
body, grad in the tail; elu_backward and hardswish_backward: NaN in the body, grad in the tail), so
no formula gives eager's values everywhere."""
from __future__ import annotations

import torch

from .promote import P, convert, elementwise_dtypes
from .registry import register

aten = torch.ops.aten


def _float(grad, x):
    compute, result = elementwise_dtypes(grad, x)
    return convert(grad, compute), convert(x, compute), result


@register(aten.leaky_relu_backward.default)
def leaky_relu_backward(grad, x, negative_slope, self_is_result):
    g, x, result = _float(grad, x)
    return convert(P["where"](P["gt"](x, 0.0), g, P["mul"](g, float(negative_slope))), result)


@register(aten.hardsigmoid_backward.default)
def hardsigmoid_backward(grad, x):
    """-3 < x < 3: grad / 6 (times eager's float 1/6), else 0."""
    g, x, result = _float(grad, x)
    inside = P["logical_and"](P["gt"](x, -3.0), P["lt"](x, 3.0))
    return convert(P["where"](inside, P["mul"](g, 1.0 / 6.0), 0.0), result)
