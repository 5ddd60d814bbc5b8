"""Reduction prims: reduce over a sorted list of dims, no keepdim, dtype unchanged (arg* give int64).

Accumulation dtype and keepdim live in the decompositions.
"""
from __future__ import annotations

import torch

from ..builder import is_tensor_like
from ..meta import TensorMeta
from ..prim import Category, check, register_prim


def _check_dims(name, x, dims):
    check(is_tensor_like(x), name, "expected a tensor")
    dims = tuple(dims)
    check(all(isinstance(d, int) and 0 <= d < max(x.ndim, 1) for d in dims), name, f"bad dims {dims} for rank {x.ndim}")
    check(list(dims) == sorted(set(dims)), name, f"dims must be sorted and unique, got {dims}")
    return dims


def _reduce_meta(name, needs_nonempty, out_dtype=None):
    def meta(x, dims):
        dims = _check_dims(name, x, dims)
        if needs_nonempty:
            check(all(x.shape[d] > 0 for d in dims if x.ndim), name, "cannot reduce an empty dim")
        shape = [s for i, s in enumerate(x.shape) if i not in dims]
        return TensorMeta.contiguous(shape, out_dtype or x.dtype, x.device)

    return meta


# name: (reference over a dims tuple, needs a non-empty reduced dim, result dtype or None, doc)
REDUCTIONS = {
    "sum": (lambda x, d: torch.sum(x, d, dtype=x.dtype) if d else x.clone(), False, None, "sum over dims"),
    "prod": (lambda x, d: _fold(torch.prod, x, d), False, None, "product over dims"),
    "amax": (lambda x, d: torch.amax(x, d) if d else x.clone(), True, None, "max over dims, NaN-propagating"),
    "amin": (lambda x, d: torch.amin(x, d) if d else x.clone(), True, None, "min over dims, NaN-propagating"),
    "argmax": (lambda x, d: _arg(torch.argmax, x, d), True, torch.int64, "index of the first max over one dim"),
    "argmin": (lambda x, d: _arg(torch.argmin, x, d), True, torch.int64, "index of the first min over one dim"),
}


def _fold(fn, x, dims):
    for d in reversed(dims):
        x = fn(x, d, dtype=x.dtype)
    return x.clone() if not dims else x


def _arg(fn, x, dims):
    if x.ndim == 0:
        return torch.zeros((), dtype=torch.int64, device=x.device)
    return fn(x, dims[0])


for _name, (_ref, _nonempty, _dtype, _doc) in REDUCTIONS.items():
    _meta = _reduce_meta(_name, _nonempty, _dtype)
    if _name.startswith("arg"):
        _inner = _meta

        def _meta(x, dims, _inner=_inner, _name=_name):
            check(len(tuple(dims)) == 1 or x.ndim == 0, _name, "reduces exactly one dim")
            return _inner(x, dims)

    register_prim(_name, Category.REDUCTION, _meta, _doc)(lambda x, dims, _ref=_ref: _ref(x, tuple(dims)).contiguous())
