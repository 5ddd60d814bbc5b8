"""Matrix products -> the extern matmul prim (plus elementwise epilogues)."""
from __future__ import annotations

import torch

from .promote import P, broadcast_to, convert
from .registry import register

aten = torch.ops.aten


@register(aten.mm.default, aten.bmm.default)
def mm(a, b):
    return P["matmul"](a, b)


_HALF = (torch.float16, torch.bfloat16)


def _float_math(fn):
    """16-bit operands: the product and its epilogue in float32, rounded once at the end, as eager's
    GEMM does (rounding the product before `+ beta * bias` is a second rounding, far off where the
    two nearly cancel)."""
    def wrapped(bias, a, b, **kw):
        if a.dtype not in _HALF:
            return fn(bias, a, b, **kw)
        return convert(fn(convert(bias, torch.float32), convert(a, torch.float32), convert(b, torch.float32), **kw),
                       a.dtype)
    return wrapped


@register(aten.addmm.default, aten.baddbmm.default)
@_float_math
def addmm(bias, a, b, *, beta=1, alpha=1):
    return _epilogue(P["matmul"](a, b), bias, beta, alpha)


@register(aten.addmv.default)
@_float_math
def addmv(bias, mat, vec, *, beta=1, alpha=1):
    prod = P["reshape"](P["matmul"](mat, P["reshape"](vec, (vec.shape[0], 1))), (mat.shape[0],))
    return _epilogue(prod, bias, beta, alpha)


@register(aten.addr.default)
@_float_math
def addr(bias, v1, v2, *, beta=1, alpha=1):
    shape = (v1.shape[0], v2.shape[0])
    prod = P["mul"](P["broadcast_in_dim"](v1, shape, (0,)), P["broadcast_in_dim"](v2, shape, (1,))) \
        if v1.dtype != torch.bool else P["logical_and"](P["broadcast_in_dim"](v1, shape, (0,)),
                                                         P["broadcast_in_dim"](v2, shape, (1,)))
    return _epilogue(prod, bias, beta, alpha)


@register(aten.addbmm.default)
@_float_math
def addbmm(bias, b1, b2, *, beta=1, alpha=1):
    b, n, k = b1.shape
    m = b2.shape[2]
    if b * k == 0:
        prod = P["full"]((n, m), 0, dtype=b1.dtype, device=b1.device)
    else:  # one GEMM over K = b * k, as eager: the batch sum happens inside the product
        lhs = P["reshape"](P["permute"](b1, (1, 0, 2)), (n, b * k))
        prod = P["matmul"](lhs, P["reshape"](b2, (b * k, m)))
    return _epilogue(prod, bias, beta, alpha)


def _epilogue(prod, bias, beta, alpha):
    """beta * bias + alpha * prod, as eager: beta == 0 ignores bias (even NaN); bool alpha/beta are and/or."""
    if prod.dtype == torch.bool:
        prod = prod if alpha else P["full"](prod.shape, False, dtype=torch.bool, device=prod.device)
        if not beta:
            return prod
        return P["logical_or"](prod, broadcast_to(convert(bias, torch.bool), prod.shape))
    if alpha != 1:
        prod = P["mul"](prod, convert(alpha, prod.dtype))
    if beta == 0:
        return prod
    bias = broadcast_to(convert(bias, prod.dtype), prod.shape)
    if beta != 1:
        bias = P["mul"](bias, convert(beta, prod.dtype))
    return P["add"](prod, bias)
