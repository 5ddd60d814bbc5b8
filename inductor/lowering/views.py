"""Shape prims -> index remaps: a view reads its input at rewritten indices, never copies."""
from __future__ import annotations

from kiln.prims.meta import contiguous_strides

from ..ir.index import floordiv, mod, strided_index
from .registry import lowers
from .value import TensorValue


def _view(x: TensorValue, shape, remap) -> TensorValue:
    return TensorValue(tuple(shape), x.dtype, x.device, lambda idx: x.loader(remap(idx)), cost=x.cost)


@lowers("broadcast_in_dim")
def broadcast_in_dim(graph, x, shape, broadcast_dims):
    pairs = [(i, d) for i, d in enumerate(broadcast_dims)]
    return _view(x, shape, lambda idx: tuple(0 if x.shape[i] == 1 else idx[d] for i, d in pairs))


@lowers("reshape")
def reshape(graph, x, shape):
    shape = tuple(shape)
    out_strides = contiguous_strides(shape)
    in_strides = contiguous_strides(x.shape)

    def remap(idx):
        flat = strided_index(idx, out_strides)
        return tuple(mod(floordiv(flat, st), size) for st, size in zip(in_strides, x.shape))

    return _view(x, shape, remap)


@lowers("permute")
def permute(graph, x, perm):
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return _view(x, tuple(x.shape[p] for p in perm), lambda idx: tuple(idx[inverse[d]] for d in range(len(perm))))


@lowers("slice")
def slice_(graph, x, start, limit, step):
    shape = tuple((e - s + k - 1) // k for s, e, k in zip(start, limit, step))
    return _view(x, shape, lambda idx: tuple(s + k * i for s, k, i in zip(start, step, idx)))
