"""Matrix products -> the extern matmul prim (plus elementwise epilogues)."""
from __future__ import annotations

import torch

from .promote import P, broadcast_to, convert
from .registry import register

aten = torch.ops.aten


@register(aten.mm.default, aten.bmm.default)
def mm(a, b):
    return P["matmul"](a, b)


@register(aten.addmm.default, aten.baddbmm.default)
def addmm(bias, a, b, *, beta=1, alpha=1):
    prod = P["matmul"](a, b)
    if alpha != 1:
        prod = P["mul"](prod, convert(alpha, prod.dtype))
    if beta == 0:
        return prod
    bias = broadcast_to(convert(bias, prod.dtype), prod.shape)
    if beta != 1:
        bias = P["mul"](bias, convert(beta, prod.dtype))
    return P["add"](prod, bias)
