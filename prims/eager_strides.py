"""Eager's result strides where fake tensors disagree with eager CPU/CUDA kernels.

Fake tensors compute `*_like` (preserve_format) results through `empty_permuted`, which places a
size-1 dim by its neighbours; eager copies a dense input's strides as they are. Functional
`resize_as` runs torch's Python decomposition on fakes (always restrides); eager clones its input
and restrides only when asked to or when the shape changes. Size-1 strides and kept layouts are
not cosmetic: eager's memory-format checks (`suggest_memory_format`, `is_contiguous(channels_last)`)
read them, and storage-addressing ops (`resize_as`, `as_strided`) read the layout. The ATen trace
and functionalization restride each such fake result to eager's strides (`restride_like_eager`),
so every TensorMeta Kiln records is eager's.
"""
from __future__ import annotations

import torch

aten = torch.ops.aten


def dense_strides_like(shape, strides) -> tuple[int, ...]:
    """ATen's `infer_dense_strides`: dense strides in the order of `strides` (what empty_like and
    clone give a tensor that is not dense). A stable insertion sort from the innermost dim, as
    TensorIterator orders dims: stride 0 keeps the contiguous order, equal strides put the smaller
    size inside."""
    ndim = len(shape)
    perm = list(range(ndim - 1, -1, -1))  # innermost first

    def should_swap(d0, d1) -> int:
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            cmp = should_swap(perm[d0], perm[d1])
            if cmp > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif cmp < 0:
                break
    out, acc = [0] * ndim, 1
    for d in perm:
        out[d] = acc
        if shape[d] > 1:
            acc *= shape[d]
    return tuple(out)


def is_dense(shape, strides) -> bool:
    """Non-overlapping and dense (ATen's is_non_overlapping_and_dense): a permutation of contiguous
    strides; size-1 dims do not count, and an empty tensor is contiguous."""
    if 0 in shape:
        return True
    dims = sorted((d for d in range(len(shape)) if shape[d] >= 2), key=lambda d: strides[d])
    acc = 1
    for d in dims:
        if strides[d] != acc:
            return False
        acc *= shape[d]
    return True


def preserved_strides(shape, strides) -> tuple[int, ...]:
    """The strides eager's empty_like/clone with preserve_format give (input shape and strides)."""
    return tuple(strides) if is_dense(shape, strides) else dense_strides_like(shape, strides)


def _like(x, *args, memory_format=None, **kwargs):
    if memory_format not in (None, torch.preserve_format) or x.layout != torch.strided:
        return None
    return preserved_strides(tuple(x.shape), tuple(x.stride()))


def _resize_as(x, template, *, memory_format=None):
    """Eager clones x (preserve_format), resizes the clone (a no-op when the shape is the same) and
    restrides it only when a memory format is given; torch's fake kernel always restrides."""
    if memory_format is not None or tuple(x.shape) != tuple(template.shape):
        return None
    return preserved_strides(tuple(x.shape), tuple(x.stride()))


def view_strides(old_shape, old_strides, new_shape) -> tuple[int, ...] | None:
    """ATen's `computeStride`: the strides `view` gives, walking chunks of dims that are contiguous
    with one another from the innermost; a size-1 dim of the new shape takes the stride of the
    chunk it falls in (fake tensors keep the input's strides when the shape does not change, or
    place size-1 dims by another rule). None where the view is impossible."""
    numel = 1
    for s in old_shape:
        numel *= s
    if not old_shape:
        return (1,) * len(new_shape)
    if numel == 0:
        if tuple(old_shape) == tuple(new_shape):
            return tuple(old_strides)
        return _contiguous_ignoring_zeros(new_shape)
    new = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = old_strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[d]
        if d == 0 or (old_shape[d - 1] != 1 and old_strides[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base, tensor_numel, view_numel = old_strides[d - 1], 1, 1
    return tuple(new) if view_d == -1 else None


def _contiguous_ignoring_zeros(shape):
    out, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = acc
        acc *= max(shape[d], 1)
    return tuple(out)


def _view(x, shape):
    shape = _infer_size(shape, x.numel())
    return view_strides(tuple(x.shape), tuple(x.stride()), shape)


def _infer_size(shape, numel):
    shape = list(shape)
    if -1 in shape:
        rest = 1
        for i, s in enumerate(shape):
            if s != -1:
                rest *= s
        shape[shape.index(-1)] = numel // rest if rest else 0
    return tuple(shape)


# ATen overload -> (args, kwargs) -> eager's result strides, or None where fake tensors get them right.
RULES = {op: _like for op in (aten.empty_like.default, aten.zeros_like.default, aten.ones_like.default,
                              aten.full_like.default, aten.rand_like.default, aten.rand_like.generator,
                              aten.randn_like.default, aten.randn_like.generator, aten.randint_like.default,
                              aten.randint_like.Tensor, aten.randint_like.low_dtype, aten.randint_like.generator,
                              aten.randint_like.Tensor_generator, aten.randint_like.low_generator_dtype)}
RULES[aten.resize_as.default] = _resize_as
RULES[aten.view.default] = RULES[aten._unsafe_view.default] = _view


def restride_like_eager(op, args, kwargs, out):
    """Give `out` (a fresh fake result of `op`) eager's strides where a rule says they differ. Call
    with fake mode active and no tracing mode above it: the restride is metadata, not an op."""
    rule = RULES.get(op)
    if rule is None or not isinstance(out, torch.Tensor):
        return out
    strides = rule(*args, **kwargs)
    if strides is not None and tuple(strides) != tuple(out.stride()):
        out.as_strided_(out.shape, strides)
    return out
