"""Type conversion and creation prims."""
from __future__ import annotations

import torch

from ..symbolic import is_size
from ..builder import is_tensor_like
from ..meta import TensorMeta
from ..prim import Category, check, register_prim


def _convert_meta(x, dtype):
    check(is_tensor_like(x), "convert_element_type", "expected a tensor")
    check(isinstance(dtype, torch.dtype), "convert_element_type", f"expected a dtype, got {dtype!r}")
    return TensorMeta.contiguous(x.shape, dtype, x.device)


@register_prim("convert_element_type", Category.CONVERT, _convert_meta, "cast to dtype with torch's conversion rules")
def convert_element_type(x, dtype):
    return x.to(dtype).contiguous()


def _full_meta(shape, value, *, dtype, device):
    check(all(is_size(s) for s in shape), "full", f"bad shape {shape}")
    return TensorMeta.contiguous(tuple(shape), dtype, device)


@register_prim("full", Category.CREATION, _full_meta, "a tensor of shape filled with value")
def full(shape, value, *, dtype, device):
    return torch.full(tuple(shape), value, dtype=dtype, device=device)


def _iota_meta(length, *, start, step, dtype, device):
    check(is_size(length), "iota", f"bad length {length}")
    return TensorMeta.contiguous((length,), dtype, device)


@register_prim("iota", Category.CREATION, _iota_meta, "start, start+step, ... (length values)")
def iota(length, *, start, step, dtype, device):
    return torch.arange(start, start + step * length, step, dtype=dtype, device=device)[:length]
