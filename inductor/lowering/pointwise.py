"""Elementwise, conversion and creation prims -> loaders composed over their inputs."""
from __future__ import annotations

import functools

import torch

from ..ir import loop as L
from ..ir.index import affine
from ..ir.loop import LoopOp
from .registry import lowers
from .value import TensorValue

# prim name -> loop op (unary and binary prims map one to one)
ELEMENTWISE = {
    "abs": LoopOp.ABS, "neg": LoopOp.NEG, "exp": LoopOp.EXP, "log": LoopOp.LOG, "log1p": LoopOp.LOG1P,
    "expm1": LoopOp.EXPM1, "sin": LoopOp.SIN, "cos": LoopOp.COS, "tan": LoopOp.TAN, "tanh": LoopOp.TANH,
    "sqrt": LoopOp.SQRT, "rsqrt": LoopOp.RSQRT, "reciprocal": LoopOp.RECIPROCAL, "erf": LoopOp.ERF,
    "floor": LoopOp.FLOOR, "ceil": LoopOp.CEIL, "trunc": LoopOp.TRUNC, "round": LoopOp.ROUND, "sign": LoopOp.SIGN,
    "logical_not": LoopOp.NOT, "isnan": LoopOp.ISNAN,
    "add": LoopOp.ADD, "sub": LoopOp.SUB, "mul": LoopOp.MUL, "div": LoopOp.TRUEDIV, "pow": LoopOp.POW,
    "maximum": LoopOp.MAXIMUM, "minimum": LoopOp.MINIMUM, "eq": LoopOp.EQ, "ne": LoopOp.NE, "lt": LoopOp.LT,
    "le": LoopOp.LE, "gt": LoopOp.GT, "ge": LoopOp.GE, "logical_and": LoopOp.AND, "logical_or": LoopOp.OR,
}


def _operand_loaders(args):
    tensor = next(a for a in args if isinstance(a, TensorValue))
    loaders = []
    for a in args:
        if isinstance(a, TensorValue):
            loaders.append(a.loader)
        else:
            c = L.constant(a, tensor.dtype)
            loaders.append(lambda idx, c=c: c)
    return tensor, loaders


def pointwise(kind: LoopOp, args, dtype=None) -> TensorValue:
    tensor, loaders = _operand_loaders(args)

    def loader(idx):
        return L.op(kind, *(ld(idx) for ld in loaders), dtype=dtype)

    out_dtype = dtype or (torch.bool if kind in L.COMPARISONS else tensor.dtype)
    cost = L.op_cost(kind) + sum(a.cost for a in args if isinstance(a, TensorValue))
    return TensorValue(tensor.shape, out_dtype, tensor.device, loader, cost=cost)


def _lower_elementwise(kind, graph, *args):
    return pointwise(kind, args)


for _name, _kind in ELEMENTWISE.items():
    lowers(_name)(functools.partial(_lower_elementwise, _kind))


@lowers("where")
def where(graph, cond, a, b):
    _, (lc, la, lb) = _operand_loaders((cond, a, b))
    dtype = next(x.dtype for x in (a, b) if isinstance(x, TensorValue))
    if not isinstance(a, TensorValue):
        la = (lambda idx, c=L.constant(a, dtype): c)
    if not isinstance(b, TensorValue):
        lb = (lambda idx, c=L.constant(b, dtype): c)
    cost = 1 + sum(x.cost for x in (cond, a, b) if isinstance(x, TensorValue))
    return TensorValue(cond.shape, dtype, cond.device, lambda idx: L.where(lc(idx), la(idx), lb(idx)), cost=cost)


@lowers("convert_element_type")
def convert_element_type(graph, x, dtype):
    return TensorValue(x.shape, dtype, x.device, lambda idx: L.to_dtype(x.loader(idx), dtype), cost=x.cost + 1)


@lowers("full")
def full(graph, shape, value, *, dtype, device):
    c = L.constant(value, dtype)
    return TensorValue(tuple(shape), dtype, torch.device(device), lambda idx: c)


@lowers("iota")
def iota(graph, length, *, start, step, dtype, device):
    def loader(idx):
        pos = L.LoopNode(LoopOp.INDEX_EXPR, (), torch.int64, affine(idx[0]) * step + start)
        return L.to_dtype(pos, dtype)

    return TensorValue((length,), dtype, torch.device(device), loader, cost=1)
