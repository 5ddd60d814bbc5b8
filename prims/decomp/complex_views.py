"""Movement ops and sums of complex tensors, applied to their (..., 2) pairs (decomp/complex.py).

The pair's trailing dim never moves: each op gets its dims normalized against the complex
tensor's rank (so -1 names the last complex dim, not the pair dim) and its sizes extended by 2.
A 0-d complex tensor's dim 0 (or -1) is the number itself, never the pair dim.
"""
from __future__ import annotations

import torch

from ..builder import Value
from .complex import PAIR_DTYPE, _covered, pair_of, parts, register, stack_pair, to_complex
from .registry import call_aten

aten = torch.ops.aten


def _d(dim: int, ndim: int) -> int:
    return dim % ndim if ndim else 0


def _on_pair(op, args_for):
    """Complex `op(z, *args)` as `op(pair, *args_for(ndim, *args))`."""
    def fn(meta, z, *args, **kwargs):
        if not _covered(meta) or not isinstance(z, Value) or z.dtype != meta.dtype:
            return None
        new = args_for(z.ndim, *args, **kwargs)
        if new is None:
            return None
        new_args, new_kwargs = new
        return to_complex(call_aten(op, pair_of(z), *new_args, **new_kwargs))

    return fn


def _sized(ndim, size, *rest, **kw):
    return (list(size) + [2], *rest), kw


# ATen overload -> how its arguments change on the pair
_PAIR_ARGS = {
    aten.view.default: _sized,
    aten._unsafe_view.default: _sized,
    aten.reshape.default: _sized,
    aten.expand.default: _sized,
    aten.permute.default: lambda n, dims: (([_d(d, n) for d in dims] + [n],), {}),
    aten.transpose.int: lambda n, a, b: ((_d(a, n), _d(b, n)), {}),
    aten.t.default: lambda n: ((0, 1) if n == 2 else (0, 0), {}),
    aten.unsqueeze.default: lambda n, d: ((_d(d, n + 1),), {}),
    aten.squeeze.dim: lambda n, d: (([_d(d, n)] if n else [],), {}),
    aten.squeeze.dims: lambda n, dims: (([_d(d, n) for d in dims] if n else [],), {}),
    aten.slice.Tensor: lambda n, dim=0, *rest: ((_d(dim, n), *rest), {}),
    aten.select.int: lambda n, dim, index: ((_d(dim, n), index), {}),
    aten.flip.default: lambda n, dims: (([_d(d, n) for d in dims] if n else [],), {}),
    aten.index.Tensor: lambda n, *a: (a, {}) if n else None,  # indices address leading dims; the pair's stays last
}

# ops whose pair form is another overload (t of the pair would swap the wrong dims)
_PAIR_OP = {aten.t.default: aten.transpose.int, aten.reshape.default: aten.view.default,
            aten.squeeze.dim: aten.squeeze.dims}

for _op, _args in _PAIR_ARGS.items():
    register(_op)(_on_pair(_PAIR_OP.get(_op, _op), _args))


@register(aten.index_select.default)
def index_select(meta, z, dim, index):
    """A 0-d tensor is indexed as the 1-element tensor it views (its index checks included)."""
    if not _covered(meta):
        return None
    pair = pair_of(z)
    if not z.ndim:
        pair = call_aten(aten.unsqueeze.default, pair, 0)
    out = call_aten(aten.index_select.default, pair, _d(dim, max(z.ndim, 1)), index)
    return to_complex(call_aten(aten.view.default, out, list(meta.shape) + [2]))


@register(aten.squeeze.default)
def squeeze(meta, z):
    if not _covered(meta):
        return None
    dims = [i for i, s in enumerate(z.shape) if s == 1]
    return to_complex(call_aten(aten.squeeze.dims, pair_of(z), dims))


@register(aten.cat.default)
def cat(meta, tensors, dim=0):
    """Operands of another dtype (real, or the other complex width) are promoted, as eager does."""
    if not _covered(meta) or any(t.ndim != len(meta.shape) for t in tensors):
        return None  # legacy 1-d empty operands
    dtype = PAIR_DTYPE[meta.dtype]
    pairs = []
    for t in tensors:
        if t.dtype == meta.dtype:
            pairs.append(pair_of(t))
        else:
            re, im = parts(t, dtype)
            im = im if isinstance(im, Value) else call_aten(aten.full_like.default, re, im)
            pairs.append(stack_pair(re, im))
    return to_complex(call_aten(aten.cat.default, pairs, _d(dim, len(meta.shape))))


@register(aten.sum.dim_IntList, aten.sum.default)
def sum_(meta, z, dim=None, keepdim=False, *, dtype=None):
    """A sum of complex numbers sums each part (eager's order of additions differs: rounding only)."""
    if not _covered(meta) or not isinstance(z, Value) or z.dtype not in PAIR_DTYPE:
        return None
    pair = pair_of(z)
    if meta.dtype != z.dtype:
        pair = call_aten(aten._to_copy.default, pair, dtype=PAIR_DTYPE[meta.dtype])
    dims = list(range(z.ndim)) if not dim or not z.ndim else [_d(d, z.ndim) for d in dim]
    if not dims:  # a 0-d tensor: dim 0 (or -1) is the number itself
        return to_complex(pair)
    return to_complex(call_aten(aten.sum.dim_IntList, pair, dims, keepdim))


# ATen overloads whose pair form only needs its sizes or padding extended (FFT gradients use them)
_PAIR_ARGS_MORE = {
    aten.slice_backward.default: lambda n, sizes, dim, start, end, step: (
        (list(sizes) + [2], _d(dim, n), start, end, step), {}),
    aten.constant_pad_nd.default: lambda n, pad, value=0: (
        ([0, 0, *pad], 0), {}) if value == 0 else None,  # pad names the last dims first: the pair's, unpadded
}
for _op, _args in _PAIR_ARGS_MORE.items():
    register(_op)(_on_pair(_op, _args))


@register(aten.slice_scatter.default)
def slice_scatter(meta, z, src, dim=0, start=None, end=None, step=1):
    """Both operands as pairs; dim counted on the complex rank."""
    if not _covered(meta) or not all(isinstance(t, Value) and t.dtype == meta.dtype for t in (z, src)):
        return None
    out = call_aten(aten.slice_scatter.default, pair_of(z), pair_of(src), _d(dim, z.ndim), start, end, step)
    return to_complex(out)


@register(aten.new_zeros.default, aten.zeros.default)
def zeros(meta, *args, **kwargs):
    """Complex zeros are a pair of zeros."""
    if not _covered(meta):
        return None
    return to_complex(call_aten(aten.zeros.default, list(meta.shape) + [2], dtype=PAIR_DTYPE[meta.dtype],
                                device=meta.device))
