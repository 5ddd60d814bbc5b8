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


def _like(value):
    def decomp(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
        return full_like(x, value, dtype=dtype, device=device)

    return decomp


register(aten.zeros_like.default)(_like(0))
register(aten.ones_like.default)(_like(1))


def _new(value):
    def decomp(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
        dtype = dtype or x.dtype
        return P["full"](tuple(size), value, dtype=dtype, device=_device(device or x.device))

    return decomp


register(aten.new_zeros.default)(_new(0))
register(aten.new_ones.default)(_new(1))


@register(aten.new_full.default)
def new_full(x, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _new(fill_value)(x, size, dtype=dtype, device=device)


def _sized(value):
    def decomp(size, *, dtype=None, layout=None, device=None, pin_memory=None):
        return P["full"](tuple(size), value, dtype=dtype or torch.get_default_dtype(), device=_device(device))

    return decomp


register(aten.zeros.default)(_sized(0))
register(aten.ones.default)(_sized(1))
