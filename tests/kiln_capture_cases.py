"""Running corpus cases: eager vs compiled on deep copies, over four calls (first, same inputs
again, new values, new shape), comparing results and the inputs' state after the call, and
counting graphs."""
from __future__ import annotations

import copy
import functools
import types
from dataclasses import dataclass
from typing import Any, Callable

import torch

import capture


@dataclass
class Case:
    fn: Callable
    make_args: Callable[[int, int], list]  # (rows, seed) -> positional arguments
    graphs: int = 1          # graphs after the first call
    reshapes: bool = True    # a new row count changes a guarded shape: one more graph

    @property
    def id(self) -> str:
        return self.fn.__name__


def assert_same(actual: Any, expected: Any, path: str = "result") -> None:
    """Equal values of the same types, recursively (tensors with assert_close)."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected, msg=lambda m: f"{path}: {m}")
        assert actual.requires_grad == expected.requires_grad, path
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, types.MethodType):
        assert actual.__func__ is expected.__func__, path
        assert_same(actual.__self__, expected.__self__, f"{path}.__self__")
    elif isinstance(expected, functools.partial):
        assert actual.func is expected.func, path
        assert_same((actual.args, actual.keywords), (expected.args, expected.keywords), f"{path} (partial)")
    elif hasattr(expected, "__dict__") and not isinstance(expected, (type, types.FunctionType, types.ModuleType)):
        assert_same(vars(actual), vars(expected), f"{path}.__dict__")
    elif hasattr(type(expected), "__slots__"):
        slots = [name for klass in type(expected).__mro__ for name in getattr(klass, "__slots__", ())]
        assert_same([getattr(actual, n) for n in slots], [getattr(expected, n) for n in slots], f"{path} slots")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def run_case(case: Case, counter) -> None:
    compiled = capture.compile(case.fn, backend=counter, fullgraph=True)
    new_shape_graphs = case.graphs + (1 if case.reshapes and case.graphs else 0)
    for rows, seed, graphs in [(3, 0, case.graphs), (3, 0, case.graphs), (3, 1, case.graphs),
                               (5, 2, new_shape_graphs)]:
        args = case.make_args(rows, seed)
        eager_args, compiled_args = copy.deepcopy(args), copy.deepcopy(args)
        expected = case.fn(*eager_args)
        actual = compiled(*compiled_args)
        assert_same(actual, expected)
        assert_same(compiled_args, eager_args, "inputs after the call")
        assert counter.count == graphs, (rows, seed, counter.count, graphs)


def tensors(count: int, cols: int = 4):
    def make(rows, seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(rows, cols, generator=gen) for _ in range(count)]
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
