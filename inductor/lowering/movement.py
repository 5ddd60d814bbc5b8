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
    shape = tuple(lo + hi + n + (max(n - 1, 0) * it if it else 0) for (lo, hi, it), n in zip(config, x.shape))
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
        pos = L.op(LoopOp.MUL, checked(index.loader(idx), x.shape[dim]), _i64(arg.strides[dim]))
        return L.indirect_load(arg.buffer, L.op(LoopOp.ADD, _index_node(base), pos), x.dtype)

    return TensorValue(index.shape, x.dtype, x.device, loader, cost=index.cost + 3)


def checked(index: L.LoopNode, size: int) -> L.LoopNode:
    """`index` if it is in [0, size), else 0 with the kernel's index-error flag set (the wrapper then
    lets eager raise). A gather checks its own index too, so no kernel ever reads out of bounds;
    an index already known to be in range (checked per dim, then linearised) is not checked again."""
    known = _known_range(index)
    if known is not None and known[0] >= 0 and known[1] < size:
        return index
    return L.op(LoopOp.CHECK_INDEX, index, _i64(size))


def _known_range(node: L.LoopNode):
    """(lo, hi) that an int64 index node is sure to lie in, from checks, constants, + and *; or None."""
    if node.op is LoopOp.CHECK_INDEX:
        return 0, node.args[1].attr - 1
    if node.op is LoopOp.CONSTANT and node.dtype == torch.int64:
        return node.attr, node.attr
    if node.op in (LoopOp.ADD, LoopOp.MUL):
        a, b = _known_range(node.args[0]), _known_range(node.args[1])
        if a is None or b is None:
            return None
        if node.op is LoopOp.ADD:
            return a[0] + b[0], a[1] + b[1]
        if min(a[0], b[0]) >= 0:
            return a[0] * b[0], a[1] * b[1]
    return None


@lowers("check_index")
def check_index(graph, index, size):
    return TensorValue(index.shape, torch.int64, index.device, lambda idx: checked(index.loader(idx), size),
                       cost=index.cost + 1)


@lowers("check_index_all")
def check_index_all(graph, index, size):
    """A buffer of its own, computed (and its check run) even when nothing reads it."""
    value = graph.realize(check_index(graph, index, size))
    graph.checks.append(value.buffer)
    return value


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
