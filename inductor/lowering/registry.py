"""The lowering registry: prim -> function(graph, *args, **kwargs) -> TensorValue."""
from __future__ import annotations

from typing import Callable

from kiln.prims import PRIMS

LOWERINGS: dict = {}


def lowers(*names: str) -> Callable:
    def wrap(fn):
        for name in names:
            LOWERINGS[PRIMS[name]] = fn
        return fn

    return wrap
