"""Shape prims. Views in the reference; index remaps (no copies) in the loop IR."""
from __future__ import annotations

import torch

from ..symbolic import is_size
from ..builder import is_tensor_like
from ..meta import TensorMeta, as_size, contiguous_strides, numel
from ..prim import Category, check, register_prim


def _bcast_meta(x, shape, broadcast_dims):
    check(is_tensor_like(x), "broadcast_in_dim", "expected a tensor")
    shape, bdims = tuple(shape), tuple(broadcast_dims)
    check(all(is_size(s) for s in shape), "broadcast_in_dim", f"bad shape {shape}")
    check(len(bdims) == x.ndim, "broadcast_in_dim", f"need one output dim per input dim, got {bdims} for rank {x.ndim}")
    check(list(bdims) == sorted(set(bdims)) and all(0 <= d < len(shape) for d in bdims), "broadcast_in_dim",
          f"broadcast dims {bdims} must be increasing and < {len(shape)}")
    strides = [0] * len(shape)
    for i, d in enumerate(bdims):
        check(x.shape[i] in (1, shape[d]), "broadcast_in_dim", f"input dim {i} of size {x.shape[i]} cannot become {shape[d]}")
        strides[d] = x.stride()[i] if x.shape[i] == shape[d] and shape[d] != 1 else 0
    return TensorMeta(shape, x.dtype, tuple(strides), x.device)


@register_prim("broadcast_in_dim", Category.SHAPE, _bcast_meta,
               "place input dim i at output dim broadcast_dims[i]; size-1 and missing dims broadcast")
def broadcast_in_dim(x, shape, broadcast_dims):
    view_shape = [1] * len(shape)
    for i, d in enumerate(broadcast_dims):
        view_shape[d] = x.shape[i]
    return x.reshape(view_shape).expand(shape)


def _reshape_meta(x, shape):
    shape = tuple(as_size(s) for s in shape)
    check(is_tensor_like(x), "reshape", "expected a tensor")
    check(all(s >= 0 for s in shape), "reshape", f"bad shape {shape} (sizes are explicit, no -1)")
    check(numel(shape) == numel(x.shape), "reshape", f"cannot reshape {list(x.shape)} to {list(shape)}")
    return TensorMeta(shape, x.dtype, contiguous_strides(shape), x.device)


@register_prim("reshape", Category.SHAPE, _reshape_meta, "row-major reshape to a shape of equal numel (result is contiguous)")
def reshape(x, shape):
    return x.reshape(tuple(shape)).contiguous()


def _permute_meta(x, perm):
    perm = tuple(perm)
    check(sorted(perm) == list(range(x.ndim)), "permute", f"{perm} is not a permutation of {x.ndim} dims")
    return TensorMeta(tuple(x.shape[p] for p in perm), x.dtype, tuple(x.stride()[p] for p in perm), x.device)


@register_prim("permute", Category.SHAPE, _permute_meta, "reorder dims: output dim i is input dim perm[i]")
def permute(x, perm):
    return x.permute(tuple(perm))


def _slice_meta(x, start, limit, step):
    check(len(start) == len(limit) == len(step) == x.ndim, "slice", "need start, limit and step per dim")
    shape = []
    for d, (s, e, k) in enumerate(zip(start, limit, step)):
        check(0 <= s <= e <= x.shape[d] and k >= 1, "slice", f"bad range [{s}:{e}:{k}] for dim {d} of size {x.shape[d]}")
        shape.append((e - s + k - 1) // k)
    return TensorMeta(tuple(shape), x.dtype, tuple(st * k for st, k in zip(x.stride(), step)), x.device)


@register_prim("slice", Category.SHAPE, _slice_meta, "x[start:limit:step] per dim (steps >= 1)")
def slice_(x, start, limit, step):
    return x[tuple(slice(s, e, k) for s, e, k in zip(start, limit, step))]
