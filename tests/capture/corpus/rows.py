"""Row-seeded inputs: cases written as `make_args(rows, seed) -> arguments`, run by `run_case`.

`rows_case` turns such a factory into a corpus `Case`: call 0 gets (3 rows, seed 0), call 1
(3 rows, seed 1: same shapes, new values), call 2 (5 rows, seed 2: a new shape, so one more
graph when `reshapes`).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from . import Case

CALLS = ((3, 0), (3, 1), (5, 2))  # (rows, seed) per call


def rows_case(fn: Callable, make_args: Callable[[int, int], list], graphs: int = 1, reshapes: bool = True,
              **options: Any) -> Case:
    """graphs: graph count after the first call; reshapes: a new row count changes a guarded shape."""
    def inputs(variant: int) -> tuple:
        rows, seed = CALLS[variant]
        return tuple(make_args(rows, seed))
    new_shape = graphs + (1 if reshapes and graphs else 0)
    return Case(fn, inputs, graphs=(graphs, graphs, new_shape), **options)


def tensors(count: int, cols: int = 4, **options):
    def make(rows, seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(rows, cols, generator=gen, **options) for _ in range(count)]
    return make


def randn(rows: int, seed: int, *shape_tail: int) -> torch.Tensor:
    return torch.randn(rows, *shape_tail, generator=torch.Generator().manual_seed(seed))


def args_of(*makers: Callable[[int, int], Any]):
    """make_args from one maker per argument, each (rows, seed) -> value (seeds kept apart)."""
    def make(rows, seed):
        return [maker(rows, seed * 101 + index) for index, maker in enumerate(makers)]
    return make


def tensor(cols: int = 4):
    return lambda rows, seed: randn(rows, seed, cols)


def const(value):
    return lambda rows, seed: copy.deepcopy(value)


def with_extra(make, *extra):
    return lambda rows, seed: make(rows, seed) + list(extra)
