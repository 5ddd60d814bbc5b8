"""Creation ops -> full / iota."""
from __future__ import annotations

import torch

from .promote import P
from .registry import register

aten = torch.ops.aten


def _device(device):
    return torch.device(device) if device is not None else torch.device("cpu")


@register(aten.full.default)
def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    dtype = dtype or torch.tensor(fill_value).dtype
    return P["full"](tuple(size), fill_value, dtype=dtype, device=_device(device))


@register(aten.scalar_tensor.default)
def scalar_tensor(value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return P["full"]((), value, dtype=dtype or torch.get_default_dtype(), device=_device(device))


@register(aten.full_like.default)
def full_like(x, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return P["full"](tuple(x.shape), fill_value, dtype=dtype or x.dtype, device=_device(device or x.device))
