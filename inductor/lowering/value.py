"""TensorValue: a lowered tensor, either realized in a buffer or a loader still to be inlined."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..ir.loop import LoopNode


@dataclass
class TensorValue:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    loader: Callable[[tuple], LoopNode]  # index per dim -> the element
    buffer: str | None = None  # set when this is exactly the content of a buffer (a plain load)
    cost: int = 0  # scalar ops inlined so far; decides when a reused value is worth realizing

    @property
    def ndim(self):
        return len(self.shape)
