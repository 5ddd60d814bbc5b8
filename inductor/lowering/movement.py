"""Data-movement prims -> loaders. Reads that may fall outside their source (cat, pad) or whose
positions are data (gather) are INDIRECT_LOADs from a realized buffer: masked ones never touch
memory where the mask is false, so padding and concatenation need no bounds tricks."""
from __future__ import annotations

import torch

from ..ir import loop as L
from ..ir.index import affine, floordiv, mod, strided_index
from ..ir.loop import LoopOp
from .registry import lowers
from .value import TensorValue


def _index_node(expr) -> L.LoopNode:
    return L.LoopNode(LoopOp.INDEX_EXPR, (), torch.int64, expr)


def _i64(v) -> L.LoopNode:
    return L.constant(v, torch.int64)


def _and(a, b):
    return b if a is None else L.op(LoopOp.AND, a, b)


def reader(graph, x: TensorValue):
    """read(index exprs per dim, offset LoopNode or None, mask LoopNode or None) -> element of x,
    from a buffer view of x (realized if it is not one already)."""
    arg = graph.tensor_arg(x)

    def read(idx, extra=None, mask=None):
        off = _index_node(strided_index(idx, arg.strides, arg.offset))
        if extra is not None:
            off = L.op(LoopOp.ADD, off, extra)
        return L.indirect_load(arg.buffer, off, x.dtype, mask)

    return read


@lowers("cat")
def cat(graph, tensors, dim):
    parts = [(t, reader(graph, t)) for t in tensors if t.shape[dim] > 0]
    t0 = tensors[0]
    shape = tuple(sum(t.shape[dim] for t in tensors) if d == dim else s for d, s in enumerate(t0.shape))
    if not parts:
        return TensorValue(shape, t0.dtype, t0.device, lambda idx: L.constant(0, t0.dtype))

    def loader(idx):
        pos = _index_node(affine(idx[dim]))
        out, start = None, 0
        for t, read in parts:
            end = start + t.shape[dim]
            inside = L.op(LoopOp.AND, L.op(LoopOp.GE, pos, _i64(start)), L.op(LoopOp.LT, pos, _i64(end)))
            shifted = tuple(affine(i) + (-start) if d == dim else i for d, i in enumerate(idx))
            v = read(shifted, mask=inside)
            out = v if out is None else L.where(inside, v, out)
            start = end
        return out

    return TensorValue(shape, t0.dtype, t0.device, loader, cost=len(parts) * 3)


@lowers("pad")
def pad(graph, x, value, config):
    shape = tuple(lo + hi + n + max(n - 1, 0) * it for (lo, hi, it), n in zip(config, x.shape))
    fill = L.constant(value, x.dtype)
    if any(s == 0 for s in x.shape):
        return TensorValue(shape, x.dtype, x.device, lambda idx: fill)
    read = reader(graph, x)

    def loader(idx):
        mask, src = None, []
        for i, (lo, _, it), n in zip(idx, config, x.shape):
            j = affine(i) + (-lo)
            pos = _index_node(j)
            mask = _and(mask, L.op(LoopOp.GE, pos, _i64(0)))
            mask = _and(mask, L.op(LoopOp.LT, pos, _i64((n - 1) * (it + 1) + 1)))
            if it:
                mask = _and(mask, L.op(LoopOp.EQ, _index_node(mod(j, it + 1)), _i64(0)))
                j = floordiv(j, it + 1)
            src.append(j)
        if mask is None:  # a 0-d tensor: nothing to pad
            return read(())
        return L.where(mask, read(tuple(src), mask=mask), fill)

    return TensorValue(shape, x.dtype, x.device, loader, cost=x.cost + 4)


@lowers("rev")
def rev(graph, x, dims):
    def remap(idx):
        return tuple(affine(i) * -1 + (x.shape[d] - 1) if d in dims else i for d, i in enumerate(idx))

    return TensorValue(x.shape, x.dtype, x.device, lambda idx: x.loader(remap(idx)), cost=x.cost)


@lowers("gather")
def gather(graph, x, dim, index):
    if x.ndim == 0:  # a 0-d gather reads the one element
        return TensorValue(index.shape, x.dtype, x.device, lambda idx: x.loader(()), cost=x.cost)
    arg = graph.tensor_arg(x)

    def loader(idx):
        base = strided_index(tuple(0 if d == dim else i for d, i in enumerate(idx)), arg.strides, arg.offset)
        pos = L.op(LoopOp.MUL, index.loader(idx), _i64(arg.strides[dim]))
        return L.indirect_load(arg.buffer, L.op(LoopOp.ADD, _index_node(base), pos), x.dtype)

    return TensorValue(index.shape, x.dtype, x.device, loader, cost=index.cost + 3)


@lowers("as_strided")
def as_strided(graph, x, shape, strides, offset):
    in_strides = []
    acc = 1
    for s in reversed(x.shape):
        in_strides.append(acc)
        acc *= max(s, 1)
    in_strides = tuple(reversed(in_strides))

    def remap(idx):
        flat = strided_index(idx, strides, offset)
        return tuple(mod(floordiv(flat, st), size) for st, size in zip(in_strides, x.shape))

    return TensorValue(tuple(shape), x.dtype, x.device, lambda idx: x.loader(remap(idx)), cost=x.cost)


@lowers("empty")
def empty(graph, shape, *, dtype, device):
    zero = L.constant(0, dtype)  # any value is right; zeros are cheapest to explain
    return TensorValue(tuple(shape), dtype, torch.device(device), lambda idx: zero)
