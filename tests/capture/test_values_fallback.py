"""Value and call kinds capture does not handle: one warning naming the construct and its
file:line, and eager's result; under fullgraph=True, `Unsupported` with the same words."""
import collections
import copy
import warnings

import pytest
import torch

from kiln import capture


class Lazy:
    def __init__(self, t):
        self.t = t

    def __getattr__(self, name):
        return self.t * 2


class Truthy:
    def __init__(self, t):
        self.t = t

    def __bool__(self):
        return False


class CustomNew:
    def __new__(cls, t):
        obj = super().__new__(cls)
        obj.t = t
        return obj


class Slotted:
    __slots__ = ("t",)

    def __init__(self, t):
        self.t = t


async def coroutine_function(t):
    return t


def returns_nested_function(x):
    def inner(t):
        return t * 2
    return x + 1, inner


def dynamic_attribute(x):
    return Lazy(x).missing + 1


def max_of_tensors(x):
    return max(x.sum(), x.mean()) + 1


def sorted_tensors(x):
    return sorted([x.sum(), x.mean()])[0] * 2


def constructs_custom_new(x):
    return CustomNew(x).t + 1


def constructs_slotted(x):
    return Slotted(x).t + 1


def formats_a_tensor(x):
    name = f"{x}"
    return x * len(name)


def tensor_dict_key(x):
    table = {x: 1}
    return x * len(table)


def calls_coroutine_function(x):
    return coroutine_function(x) and x * 2


def truth_of_object_with_bool(x):
    if Truthy(x):
        return x + 1
    return x - 1


def makes_a_class(x):
    cls = type("Made", (), {})
    return x * 2, cls


def yield_from_generator(x):
    def delegate(ts):
        yield from ts
    return sum(delegate([x, x])) * 2


def defines_a_class(x):
    class Local:
        pass
    return x * 2, Local


def makes_a_namedtuple_class(x):
    Point = collections.namedtuple("Point", "a b")
    return Point(x, x)


def generator_function_itself(x):
    yield x * 2


UNSUPPORTED = [
    (generator_function_itself, "compiling a generator"),
    (defines_a_class, "class definition inside the compiled function"),
    (makes_a_namedtuple_class, "creating a namedtuple class"),
    (returns_nested_function, "returning NestedFunctionVariable"),
    (dynamic_attribute, "__getattr__"),
    (max_of_tensors, "would compare tensors"),
    (sorted_tensors, "would compare tensors"),
    (constructs_custom_new, "defines __new__"),
    (constructs_slotted, "__slots__"),
    (formats_a_tensor, "formatting a tensor"),
    (tensor_dict_key, "not a hashable Python constant"),
    (calls_coroutine_function, "coroutine"),
    (truth_of_object_with_bool, "truth value"),
    (makes_a_class, "type() with more than one argument"),
    (yield_from_generator, "opcode GET_YIELD_FROM_ITER"),
]


def _equal(actual, expected):
    if hasattr(expected, "__next__"):
        actual, expected = tuple(actual), tuple(expected)
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected)
    elif isinstance(expected, tuple):
        for a, e in zip(actual, expected):
            _equal(a, e)


@pytest.mark.parametrize("fn, reason", UNSUPPORTED, ids=lambda v: getattr(v, "__name__", ""))
def test_breaks_or_falls_back_naming_the_construct(fn, reason, counter):
    compiled = capture.compile(fn, backend=counter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # never-awaited coroutine
        for seed in range(2):
            x = torch.randn(2, 3, generator=torch.Generator().manual_seed(seed))
            _equal(compiled(copy.deepcopy(x)), fn(copy.deepcopy(x)))
    fallback = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    graph_breaks = [str(b) for b in capture.breaks.BREAKS]  # (or a graph break, with no warning)
    assert len(fallback) <= 1, fallback
    assert graph_breaks or fallback, "neither a graph break nor a fallback"
    assert reason in "\n".join(graph_breaks + fallback)


@pytest.mark.parametrize("fn, reason", UNSUPPORTED, ids=lambda v: getattr(v, "__name__", ""))
def test_fullgraph_raises_naming_construct_and_line(fn, reason, counter):
    compiled = capture.compile(fn, backend=counter, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(capture.Unsupported) as info:
            compiled(torch.randn(2, 3))
    text = str(info.value)
    assert reason in text and "hint:" in text
    assert info.value.filename == __file__ and f"{__file__}:{info.value.lineno}" in text
