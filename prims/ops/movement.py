"""Data-movement prims: cat, pad, rev (flip), gather, and as_strided over the row-major elements.
Plus `empty` (creation). Same strictness as the others: dtypes match, sizes are explicit."""
from __future__ import annotations

import torch

from ..symbolic import is_size
from ..builder import is_tensor_like
from ..meta import TensorMeta, contiguous_strides, numel
from ..prim import Category, check, register_prim


def _cat_meta(tensors, dim):
    check(isinstance(tensors, (list, tuple)) and len(tensors) > 0 and all(is_tensor_like(t) for t in tensors), "cat",
          "expected a non-empty list of tensors")
    t0 = tensors[0]
    check(isinstance(dim, int) and 0 <= dim < t0.ndim, "cat", f"bad dim {dim} for rank {t0.ndim}")
    size = 0
    for t in tensors:
        check(t.dtype == t0.dtype, "cat", f"dtypes must match, got {t0.dtype} and {t.dtype}")
        check(t.ndim == t0.ndim and all(a == b for i, (a, b) in enumerate(zip(t.shape, t0.shape)) if i != dim), "cat",
              f"shapes {list(t0.shape)} and {list(t.shape)} differ outside dim {dim}")
        size += t.shape[dim]
    shape = tuple(size if i == dim else s for i, s in enumerate(t0.shape))
    return TensorMeta.contiguous(shape, t0.dtype, t0.device)


@register_prim("cat", Category.MOVEMENT, _cat_meta, "concatenate same-rank, same-dtype tensors along dim")
def cat(tensors, dim):
    return torch.cat(list(tensors), dim).contiguous()


def _pad_meta(x, value, config):
    check(is_tensor_like(x), "pad", "expected a tensor")
    check(len(config) == x.ndim, "pad", f"need one (low, high, interior) per dim, got {len(config)} for rank {x.ndim}")
    check(not isinstance(value, bool) or x.dtype == torch.bool, "pad", "a bool pad value needs a bool tensor")
    check(isinstance(value, (bool, int)) or x.dtype.is_floating_point, "pad", f"pad value {value!r} does not fit {x.dtype}")
    shape = []
    for d, (lo, hi, interior) in enumerate(config):
        check(interior >= 0, "pad", f"negative interior padding {interior} in dim {d}")
        n = x.shape[d]
        size = lo + hi + n + (max(n - 1, 0) * interior if interior else 0)  # (no max of a size for none)
        check(size >= 0, "pad", f"padding ({lo}, {hi}) removes more than dim {d} of size {n} holds")
        shape.append(size)
    return TensorMeta.contiguous(tuple(shape), x.dtype, x.device)


@register_prim("pad", Category.MOVEMENT, _pad_meta,
               "pad each dim by (low, high, interior) elements of value; negative low/high crop")
def pad(x, value, config):
    grown = [max(lo, 0) + max(hi, 0) + n + max(n - 1, 0) * it for (lo, hi, it), n in zip(config, x.shape)]
    out = torch.full(grown, value, dtype=x.dtype, device=x.device)
    where = tuple(slice(max(lo, 0), max(lo, 0) + max(n - 1, 0) * (it + 1) + (1 if n else 0), it + 1)
                  for (lo, _, it), n in zip(config, x.shape))
    out[where] = x
    crop = tuple(slice(-min(lo, 0), g - (-min(hi, 0))) for (lo, hi, _), g in zip(config, grown))
    return out[crop].contiguous()


def _rev_meta(x, dims):
    check(is_tensor_like(x), "rev", "expected a tensor")
    dims = tuple(dims)
    check(all(isinstance(d, int) and 0 <= d < x.ndim for d in dims) and len(set(dims)) == len(dims), "rev",
          f"bad dims {dims} for rank {x.ndim}")
    return TensorMeta.contiguous(tuple(x.shape), x.dtype, x.device)


@register_prim("rev", Category.SHAPE, _rev_meta, "reverse the order of elements along dims (flip)")
def rev(x, dims):
    return torch.flip(x, tuple(dims)).contiguous() if dims else x.contiguous()


def _gather_meta(x, dim, index):
    check(is_tensor_like(x) and is_tensor_like(index), "gather", "expected tensors")
    check(index.dtype == torch.int64, "gather", f"index must be int64, got {index.dtype}")
    check(x.ndim == index.ndim, "gather", f"index rank {index.ndim} must equal input rank {x.ndim}")
    check(isinstance(dim, int) and 0 <= dim < max(x.ndim, 1), "gather", f"bad dim {dim} for rank {x.ndim}")
    check(all(i <= s for d, (i, s) in enumerate(zip(index.shape, x.shape)) if d != dim), "gather",
          f"index shape {list(index.shape)} larger than input {list(x.shape)} outside dim {dim}")
    check(x.numel() > 0 or index.numel() == 0, "gather", "cannot gather from an empty tensor")
    return TensorMeta.contiguous(tuple(index.shape), x.dtype, x.device)


@register_prim("gather", Category.MOVEMENT, _gather_meta,
               "out[i] = x[i with dim replaced by index[i]]; indices in [0, size), as torch.gather")
def gather(x, dim, index):
    return torch.gather(x, dim, index).contiguous()


def _check_index_meta(name):
    def meta(index, size):
        check(is_tensor_like(index), name, "expected a tensor")
        check(index.dtype == torch.int64, name, f"index must be int64, got {index.dtype}")
        check(is_size(size), name, f"bad size {size!r}")
        return TensorMeta.contiguous(tuple(index.shape), torch.int64, index.device)
    return meta


def _check_index_ref(index, size):
    bad = (index < 0) | (index >= size)
    if bool(bad.any()):
        raise IndexError(f"index {int(index[bad].flatten()[0])} is out of bounds for a dimension with size {size}")
    return index.contiguous()


register_prim("check_index", Category.MOVEMENT, _check_index_meta("check_index"),
              "index unchanged if every element is in [0, size); IndexError otherwise (a data-dependent check)"
              )(_check_index_ref)
register_prim("check_index_all", Category.MOVEMENT, _check_index_meta("check_index_all"),
              "check_index of every element, run even when nothing reads the result (eager checks every index "
              "of index_select, even for an empty result)", impure=True)(_check_index_ref)


def _as_strided_meta(x, shape, strides, offset):
    check(is_tensor_like(x), "as_strided", "expected a tensor")
    shape, strides = tuple(shape), tuple(strides)
    check(len(shape) == len(strides) and all(s >= 0 for s in shape) and all(st >= 0 for st in strides), "as_strided",
          f"bad shape {list(shape)} / strides {list(strides)}")
    check(is_size(offset), "as_strided", f"bad offset {offset}")
    if numel(shape):
        last = offset + sum((s - 1) * st for s, st in zip(shape, strides))
        check(last < x.numel(), "as_strided", f"reads element {last} of a tensor of {x.numel()}")
    return TensorMeta.contiguous(shape, x.dtype, x.device)


@register_prim("as_strided", Category.SHAPE, _as_strided_meta,
               "a strided window over x's elements in row-major order (not over its storage)")
def as_strided(x, shape, strides, offset):
    return x.contiguous().reshape(-1).as_strided(tuple(shape), tuple(strides), offset).contiguous()


def _empty_meta(shape, *, dtype, device):
    check(all(is_size(s) for s in shape), "empty", f"bad shape {shape}")
    return TensorMeta(tuple(shape), dtype, contiguous_strides(shape), torch.device(device))


@register_prim("empty", Category.CREATION, _empty_meta, "a tensor of shape whose values are unspecified")
def empty(shape, *, dtype, device):
    return torch.empty(tuple(shape), dtype=dtype, device=device)
