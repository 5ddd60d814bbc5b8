"""View and copy ATen ops -> shape prims. Values are immutable here, so aliases are the value itself."""
from __future__ import annotations

import torch

from ..meta import numel
from .promote import P, broadcast_to, convert
from .registry import register

aten = torch.ops.aten


def _dim(d, ndim):
    return d + max(ndim, 1) if d < 0 else d


def _infer_shape(shape, total):
    shape = list(shape)
    if -1 in shape:
        i = shape.index(-1)
        rest = numel([s for j, s in enumerate(shape) if j != i])
        shape[i] = 0 if isinstance(rest, int) and rest == 0 else total // rest  # exact, or NotConcrete
    return tuple(shape)


@register(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def view(x, shape):
    shape = _infer_shape(shape, x.numel())
    return x if tuple(x.shape) == shape else P["reshape"](x, shape)


@register(aten.alias.default, aten.detach.default, aten.lift_fresh.default, aten.lift_fresh_copy.default)
def identity(x, *args, **kwargs):
    return x


@register(aten.clone.default, aten.contiguous.default)
def clone(x, *, memory_format=None):
    """Values are immutable, so a clone is the value itself; but extern and fallback ops see real
    layouts, so a clone to contiguous_format of a strided value becomes a contiguous copy."""
    if memory_format is not torch.contiguous_format or _contiguous(x):
        return x
    return P["reshape"](x, tuple(x.shape))  # the reshape prim's result is contiguous


def _contiguous(x) -> bool:
    from ..meta import contiguous_strides

    return all(a == b for a, b, n in zip(x.stride(), contiguous_strides(x.shape), x.shape) if n != 1)


@register(aten._to_copy.default)
def to_copy(x, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False, memory_format=None):
    if device is not None and torch.device(device) != x.device:
        from .registry import fallback_call  # (call_aten would come back here)

        return fallback_call(aten._to_copy.default, x, dtype=dtype, device=device)  # another device: run as is
    return convert(x, dtype) if dtype is not None else x


@register(aten.expand.default)
def expand(x, size, *, implicit=False):
    offset = len(size) - x.ndim
    shape = tuple(x.shape[i - offset] if s == -1 else s for i, s in enumerate(size))
    return broadcast_to(x, shape)


@register(aten.permute.default)
def permute(x, dims):
    dims = tuple(_dim(d, x.ndim) for d in dims)
    return x if dims == tuple(range(x.ndim)) else P["permute"](x, dims)


@register(aten.t.default)
def t(x):
    return permute(x, (1, 0)) if x.ndim == 2 else x


@register(aten.transpose.int)
def transpose(x, dim0, dim1):
    if x.ndim == 0:
        return x  # a 0-d tensor has the one "dim" 0 (or -1): nothing to swap
    perm = list(range(x.ndim))
    a, b = _dim(dim0, x.ndim), _dim(dim1, x.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


@register(aten.unsqueeze.default)
def unsqueeze(x, dim):
    dim = _dim(dim, x.ndim + 1)
    return P["reshape"](x, x.shape[:dim] + (1,) + x.shape[dim:])


@register(aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims)
def squeeze(x, dims=None):
    if dims is None:
        dims = range(x.ndim)
    elif isinstance(dims, int):
        dims = (dims,)
    drop = {_dim(d, x.ndim) for d in dims if x.ndim and x.shape[_dim(d, x.ndim)] == 1}
    shape = tuple(s for i, s in enumerate(x.shape) if i not in drop)
    return x if len(shape) == x.ndim else P["reshape"](x, shape)


@register(aten.slice.Tensor)
def slice_(x, dim=0, start=None, end=None, step=1):
    dim = _dim(dim, x.ndim)
    size = x.shape[dim]
    start = 0 if start is None else start
    end = size if end is None or (isinstance(end, int) and end >= 1 << 62) else end  # x[a:]: past any size
    start = min(max(start + size if start < 0 else start, 0), size)
    end = min(max(end + size if end < 0 else end, start), size)
    if (start, end, step) == (0, size, 1):
        return x
    lo, hi, st = [0] * x.ndim, list(x.shape), [1] * x.ndim
    lo[dim], hi[dim], st[dim] = start, end, step
    return P["slice"](x, lo, hi, st)


@register(aten.select.int)
def select(x, dim, index):
    dim = _dim(dim, x.ndim)
    index = index + x.shape[dim] if index < 0 else index
    y = slice_(x, dim, index, index + 1)
    return P["reshape"](y, x.shape[:dim] + x.shape[dim + 1:])
