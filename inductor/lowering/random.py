"""Random prims -> pointwise loops computing the same counter-based hash as their references
(prims/ops/random.py), so compiled draws equal reference draws; `seed` is an extern call."""
from __future__ import annotations

import math

import torch

from kiln.prims import PRIMS
from kiln.prims.meta import contiguous_strides
from kiln.prims.ops.random import MASK32, MIX, STREAM2

from ..ir import loop as L
from ..ir.index import strided_index
from ..ir.loop import LoopOp
from .registry import lowers
from .value import TensorValue

I64 = torch.int64


def _c(v, dtype=I64):
    return L.constant(v, dtype)


def _mix32(x):
    for _ in range(2):
        x = L.op(LoopOp.AND, L.op(LoopOp.MUL, L.op(LoopOp.XOR, L.op(LoopOp.SHR, x, _c(16)), x), _c(MIX)), _c(MASK32))
    return L.op(LoopOp.XOR, L.op(LoopOp.SHR, x, _c(16)), x)


def _bits(seed, counter, stream=0):
    lo = L.op(LoopOp.AND, seed, _c(0x7FFFFFFF))
    hi = L.op(LoopOp.AND, L.op(LoopOp.SHR, seed, _c(31)), _c(0x7FFFFFFF))
    x = L.op(LoopOp.XOR, L.op(LoopOp.XOR, L.op(LoopOp.AND, counter, _c(MASK32)), lo), _c(stream))
    return _mix32(L.op(LoopOp.XOR, _mix32(x), hi))


def _unit(bits, dtype):
    return L.op(LoopOp.MUL, L.to_dtype(L.op(LoopOp.SHR, bits, _c(8)), dtype), _c(1.0 / (1 << 24), dtype))


def _draw(graph, shape, seed, offset, device, dtype, value):
    shape = tuple(shape)
    strides = contiguous_strides(shape)

    def loader(idx):
        counter = L.LoopNode(LoopOp.INDEX_EXPR, (), I64, strided_index(idx, strides, offset))
        return value(seed.loader(()), counter)

    return TensorValue(shape, dtype, torch.device(device), loader, cost=20)


@lowers("uniform")
def uniform(graph, shape, low, high, *, dtype, device, seed, offset):
    def value(s, c):
        u = _unit(_bits(s, c), dtype)
        return L.op(LoopOp.ADD, L.op(LoopOp.MUL, u, _c(high - low, dtype)), _c(low, dtype))

    return _draw(graph, shape, seed, offset, device, dtype, value)


@lowers("normal")
def normal(graph, shape, mean, std, *, dtype, device, seed, offset):
    f64 = torch.float64

    def value(s, c):
        u1 = L.op(LoopOp.SUB, _c(1.0, f64), _unit(_bits(s, c), f64))
        u2 = _unit(_bits(s, c, STREAM2), f64)
        r = L.op(LoopOp.SQRT, L.op(LoopOp.MUL, _c(-2.0, f64), L.op(LoopOp.LOG, u1)))
        z = L.op(LoopOp.MUL, r, L.op(LoopOp.COS, L.op(LoopOp.MUL, _c(2 * math.pi, f64), u2)))
        return L.to_dtype(L.op(LoopOp.ADD, L.op(LoopOp.MUL, z, _c(float(std), f64)), _c(float(mean), f64)), dtype)

    return _draw(graph, shape, seed, offset, device, dtype, value)


@lowers("seed")
def seed(graph, *, device):
    return graph.extern_call("extern", PRIMS["seed"].ref, (), {"device": device}, graph.current_node.meta["kiln_meta"])
