"""Side effects on Python objects: lists, object and module attributes, globals.

Each mutation must be replayed after the graph exactly as eager makes it (or the function
runs eagerly, with one warning), and returned objects keep eager's identity.
"""
import torch

from . import Case, Fresh, args, t

CATEGORY = "side effects"


class Box:
    """A plain user class."""

    def __init__(self, value=None):
        self.value = value
        self.calls = 0
        self.items = []

    def push(self, item):
        self.items.append(item)
        return len(self.items)


class Guarded:
    def __init__(self):
        self.value = 0

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value * 2 if isinstance(value, int) else value)


class WithProperty:
    def __init__(self):
        self._value = 0

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new


def box(variant):
    return Box(torch.full((2,), float(variant)))


# -- lists given as arguments --

def list_append(x, lst):
    lst.append(x * 2)
    return x + 1


def list_append_returns_the_list(x, lst):
    lst.append(x.sin())
    return lst


def list_append_input_tensor(x, lst):
    lst.append(x)
    return lst, x


def list_extend(x, lst):
    lst.extend([x, x * 2])
    return len(lst)


def list_insert(x, lst):
    lst.insert(0, x.cos())
    return lst[0] + lst[-1].sum()


def list_pop(x, lst):
    last = lst.pop()
    return last * x.sum(), last


def list_pop_front(x, lst):
    first = lst.pop(0)
    return first, lst


def list_setitem(x, lst):
    lst[1] = x * 3
    return lst[0] + 1


def list_setitem_negative(x, lst):
    lst[-1] = lst[0] * x.mean()
    return x


def list_slice_assign(x, lst):
    lst[1:] = [x, x + 1, x + 2]
    return len(lst)


def list_delete_item(x, lst):
    del lst[0]
    return x * len(lst)


def list_delete_slice(x, lst):
    del lst[:2]
    return x


def list_clear(x, lst):
    lst.clear()
    return x * 2


def list_inplace_add(x, lst):
    lst += [x, x.exp()]
    return lst


def list_inplace_mul(x, lst):
    lst *= 2
    return x


def list_reverse(x, lst):
    lst.reverse()
    return lst[0].sum() * x


def list_remove(x, lst):
    first = lst[0]
    lst.remove(first)
    return first.sum() + x


def list_sort_constants(x, lst):
    lst.sort(reverse=True)
    return x * lst[0]


def list_copy_is_new(x, lst):
    other = lst.copy()
    other.append(x)
    return other, lst


def list_of_lists(x, lst):
    lst[0].append(x * 2)
    lst[1] = [x]
    return lst


def list_alias_local_name(x, lst):
    alias = lst
    alias.append(x + 1)
    return len(lst)


def list_walked_while_growing(x, lst):
    for item in lst:
        if len(lst) < 5:  # the loop reaches items it appended itself
            lst.append(item * 2)
    return x


def list_grown_inside_enumerate(x, lst):
    for index, item in enumerate(lst):
        if index < 2:
            lst.append(item * 2)
    return x * len(lst)


def same_list_twice(x, first, second):
    first.append(x)
    second.append(x * 2)
    return len(first), first is second


def shared_list_inputs(variant):
    shared = [torch.ones(2)]
    x = torch.randn(5 if variant == 2 else 3, 4)
    return (x, shared, shared) if variant != 1 else (x, [torch.ones(2)], [torch.ones(2)])


def new_list_stored_and_returned(x, holder):
    out = [x + 1]
    holder.append(out)
    out.append(x * 2)
    return out


def new_list_built_in_loop(x):
    out = []
    for scale in range(3):
        out.append(x * scale)
    out.insert(1, x)
    return out


def helper_appends(lst, value):
    lst.append(value)


def mutation_in_inlined_call(x, lst):
    helper_appends(lst, x * 3)
    helper_appends(lst, x)
    return x


# -- objects --

def object_attribute_set(x, obj):
    obj.value = x * 2
    return x


def object_counter(x, obj):
    obj.calls += 1
    return x * obj.calls


def object_read_after_write(x, obj):
    obj.scale = 2.5
    return x * obj.scale


def object_delete_attribute(x, obj):
    del obj.value
    return x


def object_new_list_attribute(x, obj):
    obj.items = [x, x * 2]
    return obj.items


def object_method_mutates(x, obj):
    count = obj.push(x * 2)
    obj.push(x)
    return count


def object_returned(x, obj):
    obj.value = x.sum()
    return obj


def object_custom_setattr(x, obj):
    obj.value = 3
    return x


def object_property_setter(x, obj):
    obj.value = 3
    return x


def two_objects(x, first, second):
    first.value = x
    second.value = first.value * 2
    return first.value + second.value


def object_gets_object_built_inside(x, obj):
    obj.child = Box(x * 2)
    obj.child.items.append(x)
    return obj.child


def object_gets_dict_built_inside(x, obj):
    obj.meta = {"double": x * 2, "same": x}
    return obj.meta["double"]


# -- dicts --

def dict_setitem(x, d):
    d["b"] = x * 2
    return d


def dict_update_and_pop(x, d):
    d.update({"c": x, "a": x + 1})
    first = d.pop("b")
    return first, len(d)


def dict_delete(x, d):
    del d["a"]
    return x * len(d)


def dict_nested_list(x, d):
    d["items"].append(x)
    d["count"] = len(d["items"])
    return d["count"]


def set_add(x, s):
    s.add(3)
    return x


CONFIG = {"scale": 2.0}


def global_dict_write(x):
    CONFIG["last"] = x.sum()
    return x * CONFIG["scale"]


# -- globals --

LOG = []
CACHE = None
SCALE = 1.0
COUNT = 0
TEMPORARY = "present"
GROWING = [1]


def global_list_append(x):
    LOG.append(x * 2)
    return x


def global_assign_tensor(x):
    global CACHE
    CACHE = x * 2
    return x


def global_assign_then_read(x):
    global SCALE
    SCALE = 3.0
    return x * SCALE


def global_counter(x):
    global COUNT
    COUNT += 1
    return x * COUNT


def global_delete(x):
    global TEMPORARY
    del TEMPORARY
    return x


def global_rebind_after_mutation(x):
    global GROWING
    old = GROWING
    old.append(x)
    GROWING = [x * 2]
    return old


def global_assign_in_helper_impl(value):
    global CACHE
    CACHE = value


def global_assign_in_inlined_call(x):
    global_assign_in_helper_impl([x, x + 1])
    return CACHE


# -- closures of the compiled function (nonlocal) --

def make_counter():
    count = 0

    def step(x):
        nonlocal count
        count += 1
        return x * count
    return step


def make_recorder():
    last = None
    history = []

    def record(x):
        nonlocal last
        last = x * 2
        history.append(last)
        return x + 1
    return record


def make_recorder_via_helper():
    state = [None]

    def remember(value):
        nonlocal state
        state = [value, value]

    def record(x):
        remember(x.sum())
        return state[0] * x
    return record


# -- modules --

class Cache(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.cache = None

    def forward(self, x):
        y = self.linear(x)
        self.cache = y
        return y.relu()


class Steps(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def forward(self, x):
        self.steps += 1
        return x * self.steps


class RunningMean(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(4))

    def forward(self, x):
        self.mean = self.mean * 0.9 + x.mean(0) * 0.1
        return x - self.mean


class History(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.history = []

    def forward(self, x):
        self.history.append(x.sum(0))
        return x * 2


class Child(torch.nn.Module):
    def forward(self, x):
        return x + 1


class NestedWrite(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.child = Child()

    def forward(self, x):
        y = self.child(x)
        self.child.last = y
        return y


class ParameterWrite(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        self.weight = x.sum(0)
        return x


def _list_of(count):
    return [t(2, grows=False) for _ in range(count)]


CASES = [
    Case(list_append, args(t(3, 4), _list_of(1))),
    Case(list_append_returns_the_list, args(t(3, 4), [])),
    Case(list_append_input_tensor, args(t(3, 4), _list_of(2)), graphs=(0, 0, 0)),
    Case(list_extend, args(t(3, 4), [1, 2])),
    Case(list_insert, args(t(3, 4), _list_of(2))),
    Case(list_pop, args(t(3, 4), _list_of(3))),
    Case(list_pop_front, args(t(3, 4), _list_of(3)), graphs=(0, 0, 0)),
    Case(list_setitem, args(t(3, 4), _list_of(2))),
    Case(list_setitem_negative, args(t(3, 4), _list_of(3))),
    Case(list_slice_assign, args(t(3, 4), _list_of(2))),
    Case(list_delete_item, args(t(3, 4), _list_of(3))),
    Case(list_delete_slice, args(t(3, 4), _list_of(3)), graphs=(0, 0, 0)),
    Case(list_clear, args(t(3, 4), _list_of(2))),
    Case(list_inplace_add, args(t(3, 4), _list_of(1))),
    Case(list_inplace_mul, args(t(3, 4), [1, t(2, grows=False)]), graphs=(0, 0, 0)),
    Case(list_reverse, args(t(3, 4), _list_of(3))),
    Case(list_remove, args(t(3, 4), _list_of(3))),
    Case(list_sort_constants, args(t(3, 4), [3, 1, 2])),
    Case(list_copy_is_new, args(t(3, 4), _list_of(1)), graphs=(0, 0, 0)),
    Case(list_of_lists, args(t(3, 4), [_list_of(1), _list_of(1)])),
    Case(list_alias_local_name, args(t(3, 4), [])),
    Case(list_walked_while_growing, args(t(3, 4), _list_of(2))),
    Case(list_grown_inside_enumerate, args(t(3, 4), _list_of(1)), graphs=(0, 0, 0),
         fallback="a list enumerate()/zip()/reversed() iterates over"),
    Case(same_list_twice, shared_list_inputs, graphs=(1, 2, 3), name="same_list_twice_then_distinct",
         recompiles=("is no longer the same object as",)),
    Case(new_list_stored_and_returned, args(t(3, 4), [])),
    Case(new_list_built_in_loop, args(t(3, 4))),
    Case(mutation_in_inlined_call, args(t(3, 4), [None])),
    Case(object_attribute_set, args(t(3, 4), Fresh(box))),
    Case(object_counter, args(t(3, 4), Fresh(box))),
    Case(object_read_after_write, args(t(3, 4), Fresh(box))),
    Case(object_delete_attribute, args(t(3, 4), Fresh(box)), graphs=(0, 0, 0)),
    Case(object_new_list_attribute, args(t(3, 4), Fresh(box))),
    Case(object_method_mutates, args(t(3, 4), Fresh(box))),
    Case(object_returned, args(t(3, 4), Fresh(box))),
    Case(two_objects, args(t(3, 4), Fresh(box), Fresh(box))),
    Case(object_gets_object_built_inside, args(t(3, 4), Fresh(box))),
    Case(object_gets_dict_built_inside, args(t(3, 4), Fresh(box))),
    Case(dict_setitem, args(t(3, 4), {"a": t(2, grows=False)}), graphs=(1, 1, 2)),
    Case(dict_update_and_pop, args(t(3, 4), {"a": 1, "b": t(2, grows=False)}), graphs=(1, 1, 2)),
    Case(dict_delete, args(t(3, 4), {"a": 1, "b": 2})),
    Case(dict_nested_list, args(t(3, 4), {"items": [], "count": 0}), graphs=(0, 0, 0)),
    Case(set_add, args(t(3, 4), {1, 2}), graphs=(0, 0, 0), fallback="on a set that came from outside"),
    Case(global_dict_write, args(t(3, 4)), globals=("CONFIG",), graphs=(1, 2, 3)),
    Case(object_custom_setattr, args(t(3, 4), Fresh(lambda v: Guarded())), graphs=(0, 0, 0), fullgraph=False,
         breaks=1),  # the graph breaks at the write, which runs natively
    Case(object_property_setter, args(t(3, 4), Fresh(lambda v: WithProperty())), graphs=(0, 0, 0), fullgraph=False,
         breaks=1),
    Case(global_list_append, args(t(3, 4)), graphs=(1, 2, 3), globals=("LOG",),
         recompiles=("global 'LOG' length mismatch: expected 0, got 1",)),
    Case(global_assign_tensor, args(t(3, 4)), globals=("CACHE",)),
    Case(global_assign_then_read, args(t(3, 4)), globals=("SCALE",)),
    Case(global_counter, args(t(3, 4)), graphs=(1, 2, 3), globals=("COUNT",),
         recompiles=("global 'COUNT' value mismatch: expected 0, got 1",)),
    Case(global_delete, args(t(3, 4)), graphs=(0, 0, 0), globals=("TEMPORARY",)),
    Case(global_rebind_after_mutation, args(t(3, 4)), graphs=(1, 2, 3), globals=("GROWING",)),
    Case(global_assign_in_inlined_call, args(t(3, 4)), globals=("CACHE",)),
    Case(None, args(t(3, 4)), make_fn=make_counter, graphs=(1, 2, 3), name="nonlocal_counter",
         recompiles=("value 'count' value mismatch: expected 0, got 1",)),
    Case(None, args(t(3, 4)), make_fn=make_recorder, graphs=(1, 2, 3), name="nonlocal_tensor_and_list"),
    Case(None, args(t(3, 4)), make_fn=make_recorder_via_helper, name="nonlocal_write_in_inlined_closure"),
    Case(None, args(t(3, 4)), module=Cache, name="module_stores_intermediate"),
    Case(None, args(t(3, 4)), module=Cache, backend="kiln", name="module_stores_intermediate_kiln_backend"),
    Case(new_list_stored_and_returned, args(t(3, 4), []), backend="kiln", name="new_list_stored_kiln_backend"),
    Case(None, args(t(3, 4)), module=Steps, graphs=(1, 2, 3), name="module_counter_recompiles",
         recompiles=("value 'self.steps' value mismatch: expected 0, got 1",)),
    Case(None, args(t(3, 4)), module=RunningMean, name="module_buffer_reassigned"),
    Case(None, args(t(3, 4)), module=History, graphs=(1, 2, 3), name="module_list_attribute_append"),
    Case(None, args(t(3, 4)), module=NestedWrite, name="submodule_attribute_write"),
    Case(None, args(t(3, 4)), module=ParameterWrite, graphs=(1, 1, 2), name="parameter_assignment_breaks",
         fullgraph=False, breaks=2),  # the write runs natively and raises eager's TypeError
]
for _case in CASES:
    _case.category = CATEGORY
