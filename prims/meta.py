"""TensorMeta: what the prims know about a tensor without its data (shape, dtype, strides, device)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .symbolic import from_sym, is_symbolic


def contiguous_strides(shape) -> tuple[int, ...]:
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= size if is_symbolic(size) else max(size, 1)  # a symbolic size of 0 addresses nothing
    return tuple(reversed(strides))


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@dataclass(frozen=True)
class TensorMeta:
    shape: tuple[int, ...]
    dtype: torch.dtype
    strides: tuple[int, ...]
    device: torch.device

    @staticmethod
    def of(t) -> "TensorMeta":
        """Metadata of a real, fake or meta tensor (or anything tensor-like)."""
        return TensorMeta(tuple(as_size(s) for s in t.shape), t.dtype, tuple(as_size(s) for s in t.stride()), t.device)

    @staticmethod
    def contiguous(shape, dtype, device) -> "TensorMeta":
        shape = tuple(as_size(s) for s in shape)
        return TensorMeta(shape, dtype, contiguous_strides(shape), torch.device(device))

    # Tensor-like surface, so meta rules and decompositions read tensors and metas alike.
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def stride(self) -> tuple[int, ...]:
        return self.strides

    def numel(self) -> int:
        return numel(self.shape)

    def __repr__(self) -> str:
        dt = str(self.dtype).replace("torch.", "")
        return f"{dt}{list(self.shape)}"


def as_size(s):
    """An int, or a SizeExpr for a symbolic size (prims/symbolic.py)."""
    return s if type(s) is int or is_symbolic(s) else (from_sym(s) if isinstance(s, torch.SymInt) else int(s))
