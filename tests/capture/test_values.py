"""Value kinds beyond tensors and numbers: dicts, sets, namedtuples, dataclass instances, slices
and ranges, comprehensions, starred unpacking, f-strings and builtins over them. Each case runs
eager vs compiled (fullgraph=True) over three calls (corpus.run_case; inputs: corpus/rows.py)."""
import collections
import dataclasses
import functools
import operator
import typing
from dataclasses import dataclass, field

import pytest
import torch

from kiln import capture
from corpus import run_case
from corpus.rows import args_of, const, randn, rows_case, tensor, tensors

# -- dicts -----------------------------------------------------------------------------------


def dict_literal_return(x):
    return {"a": x + 1, "b": x * 2, "n": 3}


def dict_const_key_map(x, y):
    d = {"a": x, "b": y}
    return d["a"] + d["b"], len(d)


def dict_input_getitem(x, params):
    return x * params["w"] + params["b"]


def dict_input_items_loop(x, params):
    for name, value in params.items():
        x = x + value if name == "w" else x - value
    return x


def dict_keys_values(x, params):
    total = x
    for value in params.values():
        total = total + value
    return total, list(params.keys()), sorted(params)


def dict_membership_and_len(x, params):
    if "b" in params and "missing" not in params:
        x = x + params["b"]
    return x * len(params)


def dict_get_with_default(x, params):
    return x * params.get("scale", 2.0) + params.get("w"), params.get("none")


def dict_comprehension(x, params):
    return {name: value * 2 + x for name, value in params.items()}


def dict_constructor_forms(x, y):
    a = dict(first=x, second=y)
    b = dict(zip(["p", "q"], [x + 1, y + 1]))
    c = dict(a, third=x * y)
    d = dict([("k", x)])
    return a, b, c, d


def local_dict_mutation(x, y):
    out = {}
    out["x"] = x
    out.update(y=y, z=x + y)
    out.setdefault("w", x * 3)
    out.setdefault("x", y)
    popped = out.pop("z")
    del out["y"]
    return out, popped


def dict_unpack_merge(x, params):
    merged = {**params, "extra": x}
    both = merged | {"more": x * 2}
    both |= {"last": x - 1}
    return both


def nested_dict_input(x, tree):
    return x @ tree["layer"]["w"] + tree["layer"]["b"] * tree["scale"]


def dict_int_and_tuple_keys(x):
    table = {0: x, 1: x * 2, (1, 2): x * 3}
    return table[1] + table[(1, 2)], list(table)


def ordered_dict_input(x, params):
    return x + params["b"], list(params), params


def dict_of_lists_input(x, groups):
    return [x + t for t in groups["adds"]], len(groups["adds"])


def dict_copy_then_mutate(x, params):
    local = params.copy()
    local["w"] = local["w"] * 10
    return local, x + params["w"]


def dict_dtype_keys(x):
    eps = {torch.float32: 1e-6, torch.float64: 1e-12}
    return x + eps[x.dtype]


def params_dict(rows, seed):
    return {"w": randn(rows, seed, 4), "b": randn(rows, seed + 1, 4)}


def tree_input(rows, seed):
    return {"layer": {"w": randn(4, seed, 4), "b": randn(4, seed + 1)}, "scale": 0.5}


# -- sets ------------------------------------------------------------------------------------


def set_literal_membership(x, mode):
    if mode in {"relu", "gelu"}:
        return torch.relu(x)
    return torch.tanh(x)


def set_operations(x):
    s = {1, 2, 3}
    t = set(range(2, 5))
    return x * len(s ^ t), s | t, s & t, s - t, 2 in s, s <= {1, 2, 3, 4}


def set_comprehension(x):
    residues = {i % 3 for i in range(10)}
    return x * sum(residues), residues


def set_mutation(x):
    s = set()
    s.add(1)
    s.update([2, 3], (4,))
    s.discard(1)
    s |= {7}
    return x * max(s), s, s.union({9}), s.issubset({2, 3, 4, 7, 8})


def set_input(x, activations):
    if "relu" in activations:
        x = torch.relu(x)
    return x * len(activations)


def frozenset_input(x, dims):
    return x.sum(dim=tuple(sorted(dims)))


# -- namedtuples -----------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", ["a", "b"])


class Settings(typing.NamedTuple):
    scale: float
    mode: str = "relu"
    bias: typing.Optional[torch.Tensor] = None

    def apply(self, t):
        t = t * self.scale
        return torch.relu(t) if self.mode == "relu" else t

    @property
    def doubled(self):
        return self.scale * 2


def namedtuple_fields(x, pair):
    return x * pair.a + pair.b


def namedtuple_index_and_unpack(x, pair):
    first, second = pair
    return pair[0] - second + first, pair[-1], len(pair)


def namedtuple_construct_and_return(x):
    return Pair(x + 1, b=x * 2)


def typed_namedtuple_defaults_methods(x):
    settings = Settings(0.5)
    other = Settings(2.0, "none", x)
    return settings.apply(x) + other.apply(x) + other.bias * settings.doubled, settings.mode


def namedtuple_replace_asdict(x, pair):
    moved = pair._replace(b=x + 1)
    return moved, pair._asdict(), Pair._fields


def namedtuple_isinstance(x, pair):
    return x * isinstance(pair, tuple) + isinstance(pair, Pair) * 2, isinstance(x, Pair)


def nested_namedtuple_input(x, outer):
    return x + outer.a.a * outer.a.b + outer.b


def namedtuple_constant_fields(x, settings):
    return settings.apply(x), settings.mode == "relu"


def namedtuple_return_structseq(x):
    result = torch.max(x, dim=1)
    return result, Pair(*result)


def pair_input(rows, seed):
    return Pair(randn(rows, seed, 4), randn(rows, seed + 1, 4))


# -- dataclasses -----------------------------------------------------------------------------


@dataclass
class Params:
    w: torch.Tensor
    b: torch.Tensor
    mode: str = "relu"
    LIMIT: typing.ClassVar[float] = 3.0

    def apply(self, t):
        t = t @ self.w + self.b
        return torch.relu(t) if self.mode == "relu" else t

    @property
    def width(self):
        return self.w.shape[1]


@dataclass
class Output:
    y: torch.Tensor
    aux: torch.Tensor
    tags: list = field(default_factory=list)
    scale: float = 1.0

    def __post_init__(self):
        self.total = self.y.sum() * self.scale


@dataclass(frozen=True)
class Frozen:
    a: torch.Tensor
    n: int = 2


def make_params(rows, seed, mode="relu"):
    return Params(randn(4, seed, 4), randn(4, seed + 1), mode)


def dataclass_input_fields(x, params):
    return x @ params.w + params.b


def dataclass_constant_field(x, params):
    if params.mode == "relu":
        return torch.relu(x)
    return x * 1.5


def dataclass_method_and_property(x, params):
    return params.apply(x) * params.width, params.LIMIT, Params.LIMIT


def dataclass_construct_and_return(x):
    out = Output(x + 1, x * 2, scale=0.5)
    out.tags.append("built")
    return out


def frozen_dataclass_construct(x):
    frozen = Frozen(x * 3)
    return frozen.a + frozen.n, frozen


def local_object_mutation(x):
    out = Output(x, x)
    out.y = out.y * 2
    out.extra = x - 1
    return out.y + out.extra + out.total


def dataclass_in_dict_input(x, bundle):
    return bundle["params"].apply(x) + bundle["offset"]


def dataclass_isinstance_and_type(x, params):
    return x * isinstance(params, Params) + (type(params) is Params) + dataclasses.is_dataclass(Params)


# -- slices and ranges -----------------------------------------------------------------------


def slice_objects(x):
    s = slice(1, 3)
    every_other = slice(None, None, 2)
    return x[:, s], x[every_other], s.start + s.stop, s.indices(10)


def slice_input(x, s):
    return x[s], s.step


def range_first_class(x):
    r = range(1, 6, 2)
    for i in r:
        x = x + i
    return x, len(r), r[1], r, r[::-1], 3 in r


def range_input(x, r):
    total = x
    for i in r:
        total = total * i
    return total, list(r)


def range_of_shape(x):
    return [x[i] * i for i in range(x.shape[0] - 1, -1, -1)]


# -- comprehensions and generators -----------------------------------------------------------


def list_comprehension(x, y):
    return [t * i for i, t in enumerate([x, y, x + y])]


def comprehension_with_condition(x, y):
    return [t.sum(0) for t in (x, y, x[:1]) if t.shape[0] > 1]


def nested_comprehension(x, y):
    return [[a * b for b in (x, y)] for a in (x, y)]


def comprehension_shadows_local(x):
    i = 10
    squares = [i * i for i in range(4)]
    return x * i + sum(squares), squares


def comprehension_closure(x, y):
    k = 3
    return [t * k for t in (x, y)]


def generator_into_tuple(x, y):
    return tuple(t + 1 for t in (x, y))


def generator_sum(x, y):
    return sum(t * t for t in (x, y)), sum((t for t in (x, y)), x)


def any_all_generators(x, y):
    same = all(t.shape == x.shape for t in (x, y))
    wide = any(t.shape[1] > 10 for t in (x, y))
    return x * same + y * wide


def user_generator_function(x, y):
    def differences(ts):
        for a, b in zip(ts, ts[1:]):
            yield a - b
    return sum(differences([x, y, x * y]))


def next_and_iter(x, y):
    items = iter([x, y])
    first = next(items)
    second = next(items)
    third = next(items, None)
    gen = (t * 2 for t in (x,))
    return first + second, third, next(gen), next(gen, "done")


def generator_stops_early(x, y):
    seen = []

    def tracked(ts):
        for t in ts:
            seen.append(1)
            yield t.shape[0] > 0
    found = any(tracked([x, y, x]))
    return x * found, len(seen)


# -- unpacking -------------------------------------------------------------------------------


def unpack_star_tail(x, y):
    a, *rest = (x, y, x + y)
    return a, rest


def unpack_star_middle(x):
    first, *middle, last = (x, x * 2, x * 3, x * 4)
    return first + last, middle


def unpack_star_tensor(x):
    head, *tail = x
    return head, torch.stack(tail)


def star_in_literals(x, y):
    parts = [x, y]
    return [*parts, x * 2], (*parts, y), {**{"a": x}, "b": y}


def star_call_on_tensor_method(x):
    return x.permute(*[1, 0]), x.reshape(*x.shape[::-1])


# -- strings ---------------------------------------------------------------------------------


def fstring_keys(x):
    table = {f"layer{i}": x * i for i in range(3)}
    return table["layer2"], list(table)


def fstring_formatting(x):
    name = f"{x.shape[0]:03d}-{x.dtype!s}-{x.ndim!r}-{'mode':>6}-{2.5:.2f}"
    return x + 1, name


def str_format_and_percent(x, mode):
    key = "{}_{}".format(mode, x.shape[0])
    note = "%s has %d rows" % (mode, x.shape[0])
    return x * len(key), key, note, mode.upper(), ",".join([mode, "b"])


# -- builtins over values --------------------------------------------------------------------


def isinstance_on_containers(x, params, pair):
    checks = (isinstance(params, dict), isinstance(pair, tuple), isinstance(params, (list, dict)),
              isinstance(x, torch.Tensor), isinstance([x], list), isinstance(x, (int, float)))
    return x * sum(checks), checks


def len_of_everything(x, params, pair):
    return x * (len(params) + len(pair) + len("abc") + len(range(4)) + len({1, 2}) + len(x))


def min_max_constants(x):
    rows, cols = x.shape
    biggest = max(rows, cols, 2)
    smallest = min([rows, cols])
    by_key = max([(1, "a"), (3, "b"), (2, "c")], key=lambda pair: pair[0])
    return x * biggest - smallest, by_key, min(x.shape, key=lambda n: -n)


def abs_and_sum(x, y):
    return abs(x), abs(-3), sum([x, y]), sum([x, y], 10), sum([1, 2, 3])


def getattr_hasattr(x, params):
    scale = getattr(params, "scale", 1.5)
    mode = getattr(params, "mode")
    has_bias = hasattr(params, "b") and not hasattr(params, "bias")
    return x * scale * has_bias, mode, hasattr(x, "shape"), getattr(x, "ndim")


def sorted_dict_items(x, params):
    ordered = sorted(params.items(), key=lambda item: item[0], reverse=True)
    return [value + x for _, value in ordered], [name for name, _ in ordered]


def map_builtin(x, y):
    doubled = list(map(lambda t: t * 2, [x, y]))
    relu = tuple(map(torch.relu, (x, y)))
    summed = list(map(operator.add, [x, y], [y, x]))
    return doubled, relu, summed


def tensor_type_checks(x, weight):
    return (x * (type(weight) is torch.nn.Parameter) + (type(x) is torch.Tensor) * 2
            + isinstance(weight, torch.nn.Parameter) * 4 + (type(weight * 2) is torch.Tensor) * 8)


def type_comparisons(x, pair):
    return x * (type(pair) is Pair) + (type(x) == torch.Tensor), type(pair).__name__


def callable_checks(x):
    fn = lambda t: t  # noqa: E731
    return x * (callable(fn) + callable(torch.relu) + callable(3) + callable(Pair))


def reduce_builtin(x, y):
    return functools.reduce(operator.add, [x, y, x * y]), functools.reduce(lambda a, b: a * b, [1, 2, 3], 2)


def enumerate_dict_items(x, params):
    out = x
    for index, (name, value) in enumerate(params.items()):
        out = out + value * index
    return out


def sorted_items_with_tensors(x, params):
    ordered = sorted(params.items())  # keys differ, so the tensors are never compared
    return [value * 2 for _, value in ordered], {name: value.sum() for name, value in sorted(params.items())}


def keys_view_set_operations(x, params):
    common = params.keys() & {"w", "other"}
    return x * len(common), common, params.keys() - {"w"}


def set_iteration_order(x):
    names = {"b", "a", "c", "delta", "e"}
    names.add("f")
    return [n for n in names], x * len(names), list(set([3, 1, 2])), list(set(range(5)) | {9})


def ordered_dict_constructor(x):
    table = collections.OrderedDict(b=x, a=x * 2)
    table["c"] = x * 3
    return table, list(table)


def list_slice_assignment(x):
    xs = [x, x + 1, x + 2, x + 3]
    xs[0:2] = [x * 5]
    xs[-1] = xs[-1] * 2
    del xs[0]
    xs[::2] = [x - 1]
    return xs


def sequence_repetition(x):
    return 2 * [x], (x,) * 2, [x] + [x * 2], (x,) + (1,)


def while_popping(x):
    stack = [x, x * 2, x * 3]
    total = 0
    while stack:
        total = total + stack.pop()
    return total


def list_methods(x):
    xs = [x * 3, x, x * 2]
    xs.insert(1, x + 1)
    xs.reverse()
    ordered = sorted([3, 1, 2], reverse=True)
    ys = xs.copy()
    ys.remove(ys[0])
    return xs, ys, ordered, xs.index(xs[0]), [1, 2, 1].count(1)


class SlotPoint:
    __slots__ = ("w", "scale")

    def __init__(self, w, scale):
        self.w = w
        self.scale = scale


def slots_object_input(x, point):
    return x * point.w * point.scale


CASES = [
    rows_case(dict_literal_return, tensors(1)),
    rows_case(dict_const_key_map, tensors(2)),
    rows_case(dict_input_getitem, args_of(tensor(), params_dict)),
    rows_case(dict_input_items_loop, args_of(tensor(), params_dict)),
    rows_case(dict_keys_values, args_of(tensor(), params_dict)),
    rows_case(dict_membership_and_len, args_of(tensor(), params_dict)),
    rows_case(dict_get_with_default, args_of(tensor(), params_dict)),
    rows_case(dict_comprehension, args_of(tensor(), params_dict)),
    rows_case(dict_constructor_forms, tensors(2)),
    rows_case(local_dict_mutation, tensors(2)),
    rows_case(dict_unpack_merge, args_of(tensor(), params_dict)),
    rows_case(nested_dict_input, args_of(tensor(), tree_input)),
    rows_case(dict_int_and_tuple_keys, tensors(1)),
    rows_case(ordered_dict_input, args_of(tensor(), lambda r, s: collections.OrderedDict(b=randn(r, s, 4), a=1))),
    rows_case(dict_of_lists_input, args_of(tensor(), lambda r, s: {"adds": [randn(r, s, 4), randn(r, s + 1, 4)]})),
    rows_case(dict_copy_then_mutate, args_of(tensor(), params_dict)),
    rows_case(dict_dtype_keys, tensors(1)),
    rows_case(set_literal_membership, args_of(tensor(), const("gelu"))),
    rows_case(set_operations, tensors(1)),
    rows_case(set_comprehension, tensors(1)),
    rows_case(set_mutation, tensors(1)),
    rows_case(set_input, args_of(tensor(), const({"relu", "tanh"}))),
    rows_case(frozenset_input, args_of(lambda r, s: randn(r, s, 4, 2), const(frozenset({0, 2})))),
    rows_case(namedtuple_fields, args_of(tensor(), pair_input)),
    rows_case(namedtuple_index_and_unpack, args_of(tensor(), pair_input)),
    rows_case(namedtuple_construct_and_return, tensors(1)),
    rows_case(typed_namedtuple_defaults_methods, tensors(1)),
    rows_case(namedtuple_replace_asdict, args_of(tensor(), pair_input)),
    rows_case(namedtuple_isinstance, args_of(tensor(), pair_input)),
    rows_case(nested_namedtuple_input, args_of(tensor(), lambda r, s: Pair(pair_input(r, s), randn(r, s + 7, 4)))),
    rows_case(namedtuple_constant_fields, args_of(tensor(), const(Settings(0.25, "relu")))),
    rows_case(namedtuple_return_structseq, tensors(1)),
    rows_case(dataclass_input_fields, args_of(tensor(), make_params), reshapes=True),
    rows_case(dataclass_constant_field, args_of(tensor(), make_params)),
    rows_case(dataclass_method_and_property, args_of(tensor(), make_params)),
    rows_case(dataclass_construct_and_return, tensors(1)),
    rows_case(frozen_dataclass_construct, tensors(1)),
    rows_case(local_object_mutation, tensors(1)),
    rows_case(dataclass_in_dict_input, args_of(tensor(), lambda r, s: {"params": make_params(r, s, "none"),
                                                                   "offset": randn(r, s + 3, 4)})),
    rows_case(dataclass_isinstance_and_type, args_of(tensor(), make_params)),
    rows_case(slice_objects, tensors(1)),
    rows_case(slice_input, args_of(tensor(), const(slice(0, None, 2)))),
    rows_case(range_first_class, tensors(1)),
    rows_case(range_input, args_of(tensor(), const(range(1, 4)))),
    rows_case(range_of_shape, tensors(1)),
    rows_case(list_comprehension, tensors(2)),
    rows_case(comprehension_with_condition, tensors(2)),
    rows_case(nested_comprehension, tensors(2)),
    rows_case(comprehension_shadows_local, tensors(1)),
    rows_case(comprehension_closure, tensors(2)),
    rows_case(generator_into_tuple, tensors(2)),
    rows_case(generator_sum, tensors(2)),
    rows_case(any_all_generators, tensors(2)),
    rows_case(user_generator_function, tensors(2)),
    rows_case(next_and_iter, tensors(2)),
    rows_case(generator_stops_early, tensors(2)),
    rows_case(unpack_star_tail, tensors(2)),
    rows_case(unpack_star_middle, tensors(1)),
    rows_case(unpack_star_tensor, tensors(1)),
    rows_case(star_in_literals, tensors(2)),
    rows_case(star_call_on_tensor_method, tensors(1)),
    rows_case(fstring_keys, tensors(1)),
    rows_case(fstring_formatting, tensors(1)),
    rows_case(str_format_and_percent, args_of(tensor(), const("mode"))),
    rows_case(isinstance_on_containers, args_of(tensor(), params_dict, pair_input)),
    rows_case(len_of_everything, args_of(tensor(), params_dict, pair_input)),
    rows_case(min_max_constants, tensors(1)),
    rows_case(abs_and_sum, tensors(2)),
    rows_case(getattr_hasattr, args_of(tensor(), make_params)),
    rows_case(sorted_dict_items, args_of(tensor(), params_dict)),
    rows_case(map_builtin, tensors(2)),
    rows_case(type_comparisons, args_of(tensor(), pair_input)),
    rows_case(tensor_type_checks, args_of(tensor(), lambda r, s: torch.nn.Parameter(randn(r, s, 4)))),
    rows_case(callable_checks, tensors(1)),
    rows_case(reduce_builtin, tensors(2)),
    rows_case(enumerate_dict_items, args_of(tensor(), params_dict)),
    rows_case(sorted_items_with_tensors, args_of(tensor(), params_dict)),
    rows_case(keys_view_set_operations, args_of(tensor(), params_dict)),
    rows_case(set_iteration_order, tensors(1)),
    rows_case(ordered_dict_constructor, tensors(1)),
    rows_case(list_slice_assignment, tensors(1)),
    rows_case(while_popping, tensors(1)),
    rows_case(sequence_repetition, tensors(1)),
    rows_case(list_methods, tensors(1)),
    rows_case(slots_object_input, args_of(tensor(), lambda r, s: SlotPoint(randn(r, s, 4), 0.5))),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case(case, counter, no_warnings):
    run_case(case)


def test_dict_input_returned_is_the_same_object(counter):
    def passthrough(x, params):
        return params, params["w"]
    params = params_dict(2, 0)
    out = capture.compile(passthrough, backend=counter, fullgraph=True)(randn(2, 0, 4), params)
    assert out[0] is params and out[1] is params["w"]


def test_dict_keys_are_guarded(counter):
    compiled = capture.compile(dict_membership_and_len, backend=counter, fullgraph=True)
    x = randn(2, 0, 4)
    params = params_dict(2, 1)
    compiled(x, params)
    params["extra"] = 1.0
    torch.testing.assert_close(compiled(x, params), dict_membership_and_len(x, params))
    assert counter.count == 2


def test_unread_dict_values_add_no_guards(counter):
    def reads_w(x, params):
        return x + params["w"]
    compiled = capture.compile(reads_w, backend=counter, fullgraph=True)
    x = randn(2, 0, 4)
    compiled(x, {"w": randn(2, 1, 4), "unused": object()})
    compiled(x, {"w": randn(2, 2, 4), "unused": torch.zeros(7)})
    assert counter.count == 1
    placeholders = [n.target for n in counter.graphs[0].graph.nodes if n.op == "placeholder"]
    assert placeholders == ["L_x_", "L_params_w_"]


def test_dataclass_tensor_fields_are_graph_inputs(counter):
    compiled = capture.compile(dataclass_input_fields, backend=counter, fullgraph=True)
    params = make_params(3, 0)
    compiled(randn(3, 0, 4), params)
    placeholders = [n.target for n in counter.graphs[0].graph.nodes if n.op == "placeholder"]
    assert placeholders == ["L_x_", "L_params_w_", "L_params_b_"]
    params.w = randn(4, 9, 4)  # same metadata: no recompile, the new value is used
    x = randn(3, 1, 4)
    torch.testing.assert_close(compiled(x, params), dataclass_input_fields(x, params))
    assert counter.count == 1


def test_constant_field_change_recompiles(counter):
    compiled = capture.compile(dataclass_constant_field, backend=counter, fullgraph=True)
    x = randn(3, 0, 4)
    compiled(x, make_params(3, 0, "relu"))
    torch.testing.assert_close(compiled(x, make_params(3, 0, "none")), x * 1.5)
    assert counter.count == 2


def test_rebinding_a_method_recompiles(counter):
    class Scaler:
        def __init__(self):
            self.k = 2.0

        def run(self, t):
            return t * self.k

    def call_method(x, obj):
        return obj.run(x)
    compiled = capture.compile(call_method, backend=counter, fullgraph=True)
    obj, x = Scaler(), randn(2, 0, 4)
    torch.testing.assert_close(compiled(x, obj), x * 2)
    saved = Scaler.run
    try:
        Scaler.run = lambda self, t: t - self.k
        torch.testing.assert_close(compiled(x, obj), x - 2)
        obj.run = lambda t: t * 100  # an instance attribute now shadows the method
        torch.testing.assert_close(compiled(x, obj), x * 100)
    finally:
        Scaler.run = saved
    assert counter.count == 3


def test_dict_input_with_unspellable_keys_is_unsupported(counter):
    def reads(x, table):
        return x + table[torch.float32]
    with pytest.raises(capture.Unsupported, match="keys other than str"):
        capture.compile(reads, backend=counter, fullgraph=True)(randn(2, 0, 4), {torch.float32: 1.0})


def test_returned_local_containers_are_fresh(counter):
    def build(x):
        return {"a": [x + 1]}, {1, 2}
    compiled = capture.compile(build, backend=counter, fullgraph=True)
    first, second = compiled(randn(2, 0, 4)), compiled(randn(2, 0, 4))
    assert first[0] is not second[0] and first[0]["a"] is not second[0]["a"] and first[1] is not second[1]


def test_returned_local_containers_keep_their_aliasing(counter):
    def shares(x):
        items = [x + 1]
        table = {"a": items, "b": items}
        return items, table, (items, [items])
    out = capture.compile(shares, backend=counter, fullgraph=True)(randn(2, 0, 4))
    items, table, (again, nested) = out
    assert table["a"] is items and table["b"] is items and again is items and nested[0] is items
    torch.testing.assert_close(items[0], shares(randn(2, 0, 4))[0][0])


def test_returned_container_holding_itself_is_unsupported(counter):
    def cyclic(x):
        items = [x + 1]
        items.append(items)
        return items
    with pytest.raises(capture.Unsupported, match="contains itself"):
        capture.compile(cyclic, backend=counter, fullgraph=True)(randn(2, 0, 4))
