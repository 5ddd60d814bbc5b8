"""Extern prims (served by a vendor library, called directly by the generated code) and the ATen fallback."""
from __future__ import annotations

import torch

from ..builder import is_tensor_like
from ..meta import TensorMeta
from ..prim import Category, check, register_prim


def _matmul_meta(a, b):
    check(is_tensor_like(a) and is_tensor_like(b), "matmul", "expected two tensors")
    check(a.ndim == b.ndim and a.ndim in (2, 3), "matmul", f"expected two 2-D or two 3-D tensors, got ranks {a.ndim}, {b.ndim}")
    check(a.dtype == b.dtype, "matmul", f"dtypes must match, got {a.dtype} and {b.dtype}")
    check(a.shape[:-2] == b.shape[:-2] and a.shape[-1] == b.shape[-2], "matmul",
          f"shapes {list(a.shape)} and {list(b.shape)} do not multiply")
    return TensorMeta.contiguous(tuple(a.shape[:-1]) + (b.shape[-1],), a.dtype, a.device)


@register_prim("matmul", Category.EXTERN, _matmul_meta, "(batched) matrix product, a vendor BLAS call")
def matmul(a, b):
    return torch.matmul(a, b)


def _fallback_meta(op, *args, **kwargs):
    raise TypeError("kiln.fallback has no meta rule of its own: the ATen trace supplies it")


@register_prim("fallback", Category.FALLBACK, _fallback_meta, "run an ATen op that has no decomposition, as is")
def fallback(op, *args, **kwargs):
    return op(*args, **kwargs)
