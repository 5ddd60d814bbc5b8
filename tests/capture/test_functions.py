"""Function and call kinds: nested defs and lambdas with cells, closures, functools.partial,
f(*args, **kwargs), **kwargs parameters, fixed-depth recursion, bound methods, methods of user
classes (static, class, property, super()), objects built inside the function. Each case runs
eager vs compiled (fullgraph=True) over three calls (corpus.run_case; inputs: corpus/rows.py)."""
import functools
import operator
from dataclasses import dataclass
from functools import partial

import pytest
import torch

from kiln import capture
from corpus import run_case
from corpus.rows import args_of, const, randn, rows_case, tensor, tensors

# -- nested functions, lambdas and cells -----------------------------------------------------


def nested_def_closure(x):
    k = 3.0

    def inner(t):
        return t * k
    return inner(x)


def lambda_with_defaults(x):
    g = lambda t, s=2.0: t * s  # noqa: E731
    return g(x), g(x, 3), g(s=4, t=x)


def nested_keyword_only(x, y):
    def inner(t, *, scale=2, shift):
        return t * scale + shift
    return inner(x, shift=y), inner(x, scale=3, shift=1.0)


def cell_deleted_and_rebound(x):
    y = x + 1
    get = lambda: y  # noqa: E731
    first = get()
    del y
    y = x * 3
    return first, get()


def outer_cell_deleted_and_rebound(x):
    state = x.sum()

    def step(t):
        nonlocal state
        old = state
        del state
        state = old + t.sum()
        return old

    return step(x), step(x * 2), state


def nonlocal_counter(x):
    count = 0

    def bump(step=1):
        nonlocal count
        count += step
    bump()
    bump(2)
    return x * count, count


def closure_over_argument(x, y):
    def combine():
        return x + y
    return combine() * 2


def late_binding_closures(x):
    fns = [lambda t: t * i for i in range(3)]
    return [fn(x) for fn in fns]


def default_argument_capture(x):
    fns = [lambda t, i=i: t * i for i in range(3)]
    return [fn(x) for fn in fns]


def nested_recursion(x):
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)
    return x * fact(4)


def closure_factory(x):
    def make(scale):
        def apply(t):
            return t * scale
        return apply
    double, triple = make(2), make(3)
    return double(x) + triple(x)


def decorator_inside(x):
    def twice(fn):
        def wrapped(t):
            return fn(fn(t))
        return wrapped

    @twice
    def step(t):
        return t * 0.5 + 1
    return step(x), twice(torch.relu)(x - 1)


def nested_function_default_tensor(x, y):
    def inner(t, bias=y):
        return t + bias
    return inner(x), inner(x, x)


def cell_rebound_after_definition(x):
    factor = 1

    def scaled(t):
        return t * factor
    factor = 5
    return scaled(x)


def closure_over_local_dict(x, y):
    state = {"a": x}

    def read(key):
        return state[key]
    state["b"] = y
    return read("a") + read("b")


def deep_closure_chain(x):
    a = 2

    def level1():
        b = 3

        def level2():
            return x * a * b
        return level2()
    return level1()


def closure_from_enclosing_scope_factory():
    scale = torch.tensor(2.0)
    offset = 0.5

    def uses_outer(x):
        def inner(t):
            return t * scale + offset
        return inner(x)
    return uses_outer


uses_outer_closure = closure_from_enclosing_scope_factory()


# -- **kwargs, *args, f(*args, **kwargs) -----------------------------------------------------

def helper_kwargs(t, **options):
    return t * options.get("scale", 1.0) + options.get("shift", 0.0), sorted(options)


def forward_kwargs(t, **kw):
    return helper_kwargs(t, **kw)


def apply_all(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def mixed_signature(a, b=2, *rest, c, d=4, **extra):
    return a * b + sum(rest, 0) + c * d + len(extra)


def kwargs_parameter(x):
    return helper_kwargs(x, scale=2.0, shift=1.0), helper_kwargs(x)


def kwargs_forwarding(x):
    return forward_kwargs(x, scale=3.0)


def star_args_call(x, y):
    args = (x, y)
    return apply_all(torch.add, *args, alpha=2), apply_all(torch.mul, x, y)


def star_star_call_with_inputs(x, args, kwargs):
    return torch.clamp(x, *args, **kwargs)


def mixed_signature_calls(x, y):
    return (mixed_signature(x, c=y), mixed_signature(x, 3, x, y, c=1.0, d=y, flag=True),
            mixed_signature(*(x, 1), **{"c": x, "z": 0}))


def call_with_unpacked_dict_input(x, options):
    return helper_kwargs(x, **options)


def positional_only_and_kwargs(x):
    def f(a, /, **kw):
        return a + len(kw) + kw.get("a", 0)
    return f(x, a=10)


# -- functools.partial -----------------------------------------------------------------------

def scale_shift(t, scale, shift=0.0):
    return t * scale + shift


def partial_inside(x, y):
    add2 = functools.partial(torch.add, alpha=2)
    scaled = partial(scale_shift, scale=3.0)
    return add2(x, y), scaled(x), scaled(x, shift=1.0)


def partial_of_lambda(x):
    fn = partial(lambda t, a, b: t * a - b, b=1.0)
    return fn(x, 2.0)


def nested_partial(x, y):
    first = partial(scale_shift, x)
    second = partial(first, 2.0)
    return second(shift=y), second.args, second.keywords


def partial_input(x, fn):
    return fn(x)


def partial_attributes(x):
    fn = partial(scale_shift, 2.0, shift=1.0)
    return fn.func(x, *fn.args, **fn.keywords)


# -- recursion -------------------------------------------------------------------------------

def tree_sum(tree):
    if isinstance(tree, dict):
        return sum((tree_sum(value) for value in tree.values()), 0)
    if isinstance(tree, (list, tuple)):
        return sum((tree_sum(value) for value in tree), 0)
    return tree


def recursive_structure_walk(x, tree):
    return x + tree_sum(tree)


def power(t, n, *, acc=None):
    acc = t if acc is None else acc * t
    return acc if n <= 1 else power(t, n - 1, acc=acc)


def recursion_with_kwargs(x):
    return power(x, 3)


def tree_input(rows, seed):
    return {"a": randn(rows, seed, 4), "b": [randn(rows, seed + 1, 4), {"c": randn(rows, seed + 2, 4)}]}


# -- user classes and methods ----------------------------------------------------------------


class Base:
    kind = "base"

    def __init__(self, weight, offset=0.0):
        self.weight = weight
        self.offset = offset

    def scale(self, t):
        return t * self.weight + self.offset

    def describe(self):
        return self.kind


class Derived(Base):
    kind = "derived"
    FACTOR = 2.0

    def scale(self, t):
        return super().scale(t) * self.FACTOR

    @staticmethod
    def helper(t):
        return t - 1

    @classmethod
    def build(cls, weight):
        return cls(weight, offset=1.0)

    @property
    def doubled_weight(self):
        return self.weight * 2

    def __call__(self, t):
        return self.scale(t) + self.helper(t)


class Accumulator:
    def __init__(self, start):
        self.value = start
        self.steps = 0

    def add(self, t):
        self.value = self.value + t
        self.steps += 1
        return self


def user_object_input(x, obj):
    return obj.scale(x), obj.describe(), obj.kind


def static_class_methods(x, obj):
    built = Derived.build(x)
    return obj.helper(x), Derived.helper(x), built.scale(x), built.offset, obj.FACTOR


def property_and_call(x, obj):
    return obj.doubled_weight * x, obj(x)


def construct_user_object(x, y):
    acc = Accumulator(x)
    acc.add(y).add(y * 2)
    return acc.value, acc.steps, acc


def construct_derived_inside(x):
    obj = Derived(x.sum(0), offset=0.5)
    return obj(x), obj.kind


def bound_method_input(x, method):
    return method(x)


def method_passed_as_callback(x, obj):
    return apply_all(obj.scale, x), list(map(obj.scale, [x, x * 2]))


def class_attribute_reads(x, obj):
    return x * Derived.FACTOR, Base.kind, type(obj).kind, obj.__class__.FACTOR


def object_holding_objects(x, holder):
    return holder.inner.scale(x) + holder.bias


class Holder:
    def __init__(self, inner, bias):
        self.inner = inner
        self.bias = bias


@dataclass
class Point:
    x: torch.Tensor
    y: torch.Tensor

    @classmethod
    def origin_like(cls, t):
        return cls(torch.zeros_like(t), torch.zeros_like(t))

    def shifted(self, dx):
        return Point(self.x + dx, self.y)


def dataclass_classmethod_constructor(x):
    p = Point.origin_like(x).shifted(x)
    return p, p.x + p.y


class Gated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.config = Base(0.5, offset=0.25)
        self.options = {"gate": True, "eps": 1e-3}

    def forward(self, x):
        y = self.config.scale(self.proj(x))
        if self.options["gate"]:
            y = y * torch.sigmoid(x)
        return y + self.options["eps"]


class GatedChild(Gated):
    def forward(self, x):
        return super().forward(x) * 2


class Counter:
    def __init__(self, start):
        self.total = start


class ScaledCounter(Counter):
    def __init__(self, start, scale):
        super().__init__(start * scale)
        self.scale = scale


def super_init_inside(x):
    counter = ScaledCounter(x, 3.0)
    return counter.total, counter.scale


class Branches(torch.nn.Module):
    def __init__(self, with_extra):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])
        if with_extra:
            self.extra = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        y = sum(layer(x) for layer in self.layers)
        if hasattr(self, "extra"):
            y = y * self.extra
        return y, isinstance(self.layers[0], torch.nn.Linear)


def derived_input(rows, seed):
    return Derived(randn(rows, seed, 4), offset=0.5)


FUNCTION_CASES = [
    rows_case(nested_def_closure, tensors(1)),
    rows_case(lambda_with_defaults, tensors(1)),
    rows_case(nested_keyword_only, tensors(2)),
    rows_case(nonlocal_counter, tensors(1)),
    rows_case(cell_deleted_and_rebound, tensors(1)),
    rows_case(outer_cell_deleted_and_rebound, tensors(1)),
    rows_case(closure_over_argument, tensors(2)),
    rows_case(late_binding_closures, tensors(1)),
    rows_case(default_argument_capture, tensors(1)),
    rows_case(nested_recursion, tensors(1)),
    rows_case(closure_factory, tensors(1)),
    rows_case(decorator_inside, tensors(1)),
    rows_case(nested_function_default_tensor, tensors(2)),
    rows_case(cell_rebound_after_definition, tensors(1)),
    rows_case(closure_over_local_dict, tensors(2)),
    rows_case(deep_closure_chain, tensors(1)),
    rows_case(uses_outer_closure, tensors(1)),
    rows_case(kwargs_parameter, tensors(1)),
    rows_case(kwargs_forwarding, tensors(1)),
    rows_case(star_args_call, tensors(2)),
    rows_case(star_star_call_with_inputs, args_of(tensor(), const((-0.5,)), const({"max": 0.5}))),
    rows_case(mixed_signature_calls, tensors(2)),
    rows_case(call_with_unpacked_dict_input, args_of(tensor(), const({"scale": 2.0, "shift": -1.0}))),
    rows_case(positional_only_and_kwargs, tensors(1)),
    rows_case(partial_inside, tensors(2)),
    rows_case(partial_of_lambda, tensors(1)),
    rows_case(nested_partial, tensors(2)),
    rows_case(partial_input, args_of(tensor(), const(partial(scale_shift, scale=2.0, shift=0.5)))),
    rows_case(partial_attributes, tensors(1)),
    rows_case(recursive_structure_walk, args_of(tensor(), tree_input)),
    rows_case(recursion_with_kwargs, tensors(1)),
    rows_case(user_object_input, args_of(tensor(), derived_input)),
    rows_case(static_class_methods, args_of(tensor(), derived_input)),
    rows_case(property_and_call, args_of(tensor(), derived_input)),
    rows_case(construct_user_object, tensors(2)),
    rows_case(construct_derived_inside, tensors(1)),
    rows_case(bound_method_input, args_of(tensor(), lambda r, s: derived_input(r, s).scale)),
    rows_case(method_passed_as_callback, args_of(tensor(), derived_input)),
    rows_case(class_attribute_reads, args_of(tensor(), derived_input)),
    rows_case(object_holding_objects, args_of(tensor(), lambda r, s: Holder(derived_input(r, s), randn(r, s + 5, 4)))),
    rows_case(dataclass_classmethod_constructor, tensors(1)),
    rows_case(super_init_inside, tensors(1)),
]


@pytest.mark.parametrize("case", FUNCTION_CASES, ids=lambda case: case.id)
def test_case(case, counter, no_warnings):
    run_case(case)


@pytest.mark.parametrize("module_type", [Gated, GatedChild])
def test_module_with_user_objects_and_super(module_type, counter, no_warnings):
    torch.manual_seed(0)
    module = module_type()
    compiled = capture.compile(module, backend=counter, fullgraph=True)
    for rows, graphs in [(3, 1), (3, 1), (5, 2)]:
        x = torch.randn(rows, 4)
        torch.testing.assert_close(compiled(x), module(x))
        assert counter.count == graphs
    module.options["gate"] = False  # a constant the trace branched on: recompile
    x = torch.randn(5, 4)
    torch.testing.assert_close(compiled(x), module(x))
    assert counter.count == 3


def test_nested_function_is_inlined_into_one_graph(counter):
    capture.compile(decorator_inside, backend=counter, fullgraph=True)(torch.randn(2, 4))
    (gm,) = counter.graphs
    ops = [node.target for node in gm.graph.nodes if node.op == "call_function"]
    assert ops.count(operator.mul) == 2 and ops.count(torch.relu) == 2


def test_changed_partial_arguments_recompile(counter):
    compiled = capture.compile(partial_input, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    compiled(x, partial(scale_shift, scale=2.0))
    torch.testing.assert_close(compiled(x, partial(scale_shift, scale=3.0)), x * 3.0)
    torch.testing.assert_close(compiled(x, partial(scale_shift, 4.0)), x * 4.0)
    assert counter.count == 3


def test_kwargs_keys_are_guarded(counter):
    def takes_kwargs(x, **options):
        return x * len(options) + options.get("bias", 0.0)
    compiled = capture.compile(takes_kwargs, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    torch.testing.assert_close(compiled(x, a=1), takes_kwargs(x, a=1))
    torch.testing.assert_close(compiled(x, a=1, bias=2.0), takes_kwargs(x, a=1, bias=2.0))
    assert counter.count == 2


@pytest.mark.parametrize("with_extra", [False, True])
def test_module_hasattr_generator_over_layers(with_extra, counter, no_warnings):
    torch.manual_seed(0)
    module = Branches(with_extra)
    compiled = capture.compile(module, backend=counter, fullgraph=True)
    x = torch.randn(3, 4)
    out, is_linear = compiled(x)
    expected, expected_is_linear = module(x)
    torch.testing.assert_close(out, expected)
    assert is_linear is expected_is_linear is True
    if not with_extra:  # adding the attribute later breaks the hasattr guard
        module.extra = torch.nn.Parameter(torch.full((4,), 2.0))
        torch.testing.assert_close(compiled(x)[0], module(x)[0])
        assert counter.count == 2


def test_del_of_the_compiled_closures_own_cell_is_replayed():
    def make():
        state = torch.zeros(3)

        def step(x, rebind):
            nonlocal state
            old = state
            del state
            if rebind:
                state = x * 2
            return old + x

        return step

    eager, original = make(), make()
    compiled = capture.compile(original, backend="eager", fullgraph=True)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x, True), eager(x, True))
    torch.testing.assert_close(original.__closure__[0].cell_contents, eager.__closure__[0].cell_contents)
    torch.testing.assert_close(compiled(x, False), eager(x, False))
    for fn in (original, eager):  # deleted: the replay emptied the real cell
        with pytest.raises(ValueError, match="empty"):
            fn.__closure__[0].cell_contents
