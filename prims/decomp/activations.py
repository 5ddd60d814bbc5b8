"""Activation functions -> elementwise prims."""
from __future__ import annotations

import math

import torch

from .promote import P, Promotion, convert, elementwise_dtypes
from .registry import register

aten = torch.ops.aten


def _float_compute(x):
    compute, result = elementwise_dtypes(x, how=Promotion.INT_TO_FLOAT)
    return convert(x, compute), result


def _sigmoid(x):
    return P["reciprocal"](P["add"](P["exp"](P["neg"](x)), 1.0))


@register(aten.relu.default)
def relu(x):
    return P["maximum"](x, convert(0, x.dtype))


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
        y = P["mul"](P["mul"](x, 0.5), P["add"](P["erf"](P["mul"](x, 1 / math.sqrt(2))), 1.0))
    return convert(y, result)
