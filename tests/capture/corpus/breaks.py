"""Graph breaks: functions with code capture cannot trace, compiled around it.

Each case is compiled without fullgraph and must give eager's results, arguments, globals and
grad mode over three calls, with the graph count (counting backend, resume functions' graphs
included) after each call and the number of graph breaks compiled asserted.
"""
import functools
import logging
import random
import time
import zlib

import numpy
import torch

from kiln import capture

from . import Case, Fresh, args, t

CATEGORY = "graph breaks"
OBSERVED = []   # what disabled functions saw of the Python state when they ran
STATE = 0       # a global the functions write
log = logging.getLogger("kiln.test_corpus")


@capture.disable
def observe(*values):
    """Untraceable on purpose: records what it sees (copies), so replay order is checked."""
    OBSERVED.append([list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for v in values])


@capture.disable
def opaque_double(x):
    return x * 2


@capture.disable
def raises_value_error(x):
    raise ValueError("from a disabled function")


@capture.allow_in_graph
def allowed_scale(x):
    return x * 3 + 1


# -- print and logging ---------------------------------------------------------------------

def print_between_ops(x):
    y = x.sin() + 1
    print("between", y.shape)
    return y * 2


def print_a_tensor(x):
    y = x.cos()
    print(y)
    return y + x


def print_first(x):
    print("start")
    return x.relu() * 2


def print_last(x):
    y = x.exp()
    print("end")
    return y


def two_prints(x):
    a = x + 1
    print("one")
    b = a * 2
    print("two", b.sum())
    return a, b


def print_with_keywords(x):
    y = x - 1
    print("y", y.shape, sep=",", end="\n")
    return y.abs()


def logging_call(x):
    y = x.tanh()
    log.info("tanh of %s", tuple(y.shape))
    return y * y


# -- reading tensor values into Python ---------------------------------------------------

def item_then_scale(x):
    s = x.sum().item()
    return x * s


def item_python_arithmetic(x):
    a = x.max().item()
    b = a * 2 + 1
    return x + b, b


def item_to_int(x):
    n = int(x.abs().sum().item() > 1)
    return x * n


def tolist_then_python(x):
    rows = x.tolist()
    return x + len(rows), rows


def tolist_back_to_tensor(x):
    return torch.tensor(x.tolist()) * 2


def numpy_then_python(x):
    arr = x.numpy()
    m = float(arr.mean())
    return x - m


def numpy_arithmetic(x):
    arr = x.detach().numpy()
    doubled = arr * 2
    return torch.from_numpy(doubled) + 1


def item_in_condition(x):
    if x.sum().item() > 0:
        return x * 2
    return x * 3


# -- data-dependent control flow -------------------------------------------------------------

def if_on_tensor(x):
    y = x.sin()
    if y.sum() > 0:
        return y * 2
    return y - 1


def if_else_then_more(x):
    if x.mean() > 0:
        y = x + 1
    else:
        y = x - 1
    return y * 2


def nested_ifs(x, w):
    if x.sum() > 0:
        if w.sum() > 0:
            return x + w
        return x - w
    return x * w


def if_with_and(x, w):
    if x.sum() > 0 and w.sum() > 0:
        return x * w
    return x + w


def if_not_all(x):
    if not (x > -2).all():
        return x.clamp(min=-2)
    return x + 0.5


def conditional_expression(x):
    y = x * 2 if x.sum() > 0 else x * 3
    return y + 1


def bool_of_tensor(x):
    flag = bool(x.sum() > 0)
    return x + 1, flag


def while_on_tensor(x):
    steps = 0
    while x.sum() > 0:
        x = x - 1
        steps += 1
    return x, steps


# -- C extensions and functions capture cannot trace -----------------------------------------

def calls_time(x):
    y = x * 2
    start = time.perf_counter()
    return y + 1, type(start)


def calls_numpy_function(x):
    arr = numpy.asarray(x)
    return torch.from_numpy(numpy.square(arr)) + x


def calls_zlib(x):
    y = x + 1
    checksum = zlib.crc32(b"kiln")
    return y * 2, checksum


def calls_builtin_hash(x):
    y = x.sin()
    same = hash("kiln") == hash("kiln")
    return y, same


def calls_random_seeded(x):
    rng = random.Random(0)
    value = rng.random()
    return x * value


def calls_disabled(x):
    y = x + 1
    z = opaque_double(y)
    return z * 3


def disabled_result_used_twice(x):
    z = opaque_double(x.cos())
    return z + z, z.sum()


def disabled_mutates_list(x, items):
    items.append(x * 2)
    observe(items)
    items.append(x * 3)
    return len(items)


def allowed_in_graph(x):
    return allowed_scale(x) + allowed_scale(x * 2)


# -- generators ------------------------------------------------------------------------------

def printing_generator(x):
    for i in range(3):
        print("yield", i)
        yield x * i


def list_of_printing_generator(x):
    return torch.stack(list(printing_generator(x)))


def sum_of_printing_generator(x):
    return sum(printing_generator(x + 1))


def loop_over_printing_generator(x):
    total = x * 0
    for value in printing_generator(x):
        total = total + value
    return total


# -- try / except ----------------------------------------------------------------------------

def print_inside_try(x):
    try:
        y = x.sin()
        print("inside try")
        y = y + 1
    except ValueError:
        y = x
    return y * 2


def exception_resumes_in_handler(x):
    y = x * 2
    try:
        y = raises_value_error(y)
    except ValueError:
        y = y - 1
    return y


def try_finally_around_break(x):
    try:
        y = x + 1
        print("in try")
    finally:
        z = x * 2
    return y, z


def exception_escapes(x):
    y = x + 1
    raises_value_error(y)
    return y


# -- grad mode -------------------------------------------------------------------------------

def print_inside_no_grad(x):
    y = x * 2
    with torch.no_grad():
        z = y + 1
        print("no grad")
        w = z * 3
    return w, w.requires_grad, torch.is_grad_enabled()


def print_inside_enable_grad_inside_no_grad(x):
    with torch.no_grad():
        a = x * 2
        with torch.enable_grad():
            b = x * 3
            print("enable grad")
            c = b + a
        d = c * 2
    return a, b, c, d, torch.is_grad_enabled()


def print_inside_set_grad_enabled(x):
    with torch.set_grad_enabled(False):
        y = x + 1
        print("set_grad_enabled(False)")
        z = y * x
    return y, z, x * 2


def no_grad_then_break_outside(x):
    with torch.no_grad():
        y = x * 2
    print("after no_grad")
    return y, x * y


def set_grad_enabled_call_then_break(x):
    torch.set_grad_enabled(False)
    y = x * 2
    print("grad off")
    return y, y.requires_grad


def if_on_tensor_inside_no_grad(x):
    with torch.no_grad():
        y = x * 2
        if y.sum() > 0:
            z = y + 1
        else:
            z = y - 1
    return z, x * z


# -- breaks inside inlined calls (the callee is compiled separately) --------------------------

def printing_helper(t):
    u = t * 2
    print("helper")
    return u + 1


def helper_calls_printing_helper(t):
    return printing_helper(t - 1) * 3


def calls_printing_helper(x):
    y = x.sin()
    z = printing_helper(y)
    return z + y


def calls_nested_printing_helper(x):
    return helper_calls_printing_helper(x) + 1


def item_helper(t):
    return t * t.sum().item()


def calls_item_helper(x):
    return item_helper(x + 1) - 1


def calls_printing_helper_twice(x):
    a = printing_helper(x)
    b = printing_helper(a)
    return a, b


class PrintingBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        y = self.linear(x)
        print("block")
        return y.relu()


class Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = PrintingBlock()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.block(x) + x)


class MethodPrints(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4))

    def helper(self, x):
        print("method")
        return x * self.scale

    def forward(self, x):
        return self.helper(x + 1) - 1


# -- breaks inside loops (the rest of the frame runs eagerly) -------------------------------

def print_in_for_loop(x):
    for i in range(3):
        x = x * 2
        print("iteration", i)
    return x + 1


def break_in_loop_over_list(xs):
    total = 0
    for x in xs:
        total = total + x.sum().item()
    return total


def loop_after_break(x):
    print("before the loop")
    for _ in range(3):
        x = x + 1
    return x


def loop_before_break(x):
    for i in range(3):
        x = x * (i + 1)
    print("after the loop")
    return x - 1


# -- side effects across a break ----------------------------------------------------------------

def list_mutation_across_break(x, items):
    items.append(x * 2)
    observe(items)
    items.append(x * 3)
    return items


def dict_mutation_across_break(x, table):
    table["a"] = x + 1
    observe(table)
    table["b"] = x * 2
    return table


class Box:
    def __init__(self, value):
        self.value = value


def object_attribute_across_break(x, box):
    box.value = x * 2
    observe(box.value)
    box.value = box.value + 1
    return box.value


def global_write_across_break(x):
    global STATE
    STATE = STATE + 1
    observe(STATE)
    STATE = STATE * 10
    return x + STATE


def inplace_mutations_around_break(x):
    x.add_(1)
    observe(x.clone())
    x.mul_(2)
    return x


def inplace_then_print_then_inplace_view(x):
    x[0] = 0.0
    print("between in-place ops")
    x[1:].mul_(3)
    return x.sum()


def list_made_inside_across_break(x):
    items = [x, x + 1]
    print("made a list")
    items.append(x * 2)
    return items


def aliased_list_across_break(x):
    items = [x]
    same = items
    print("aliases")
    same.append(x + 1)
    return items, same, items is same


def input_list_returned_across_break(x, items):
    print("returning the input list")
    return items, x + len(items)


class Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.register_buffer("total", torch.zeros(4))

    def forward(self, x):
        self.calls = self.calls + 1
        self.total.add_(x.sum(0))
        observe(self.calls)
        return x * self.calls


def effects_in_program_order(x, items):
    global STATE
    items.append(1)
    STATE = 5
    items.append(2)
    observe(items, STATE)
    return x + STATE


def returns_tuple_across_break(x, w):
    a = x @ w
    print("matmul done")
    return a, a.t(), (a + 1,)


def star_args_across_break(x, *rest):
    y = x + sum(r.sum() for r in rest)
    print("rest", len(rest))
    return y


def keyword_only_across_break(x, *, scale=2.0):
    y = x * scale
    print("keyword only")
    return y


def break_uses_many_locals(x):
    a, b, c = x + 1, x + 2, x + 3
    d = a * b
    print("many locals")
    return a + b + c + d


def closure_made_inside(x):
    def inner(t):
        return t + x
    print("closure")
    return inner(x)


def lambda_in_a_local(x):
    f = lambda t: t * 2  # noqa: E731
    print("lambda")
    return f(x)


def break_on_module_call_result(x, w):
    y = torch.nn.functional.linear(x, w)
    print("linear")
    return torch.nn.functional.gelu(y)


def two_breaks_inside_no_grad(x):
    with torch.no_grad():
        a = x * 2
        print("first")
        b = a + 1
        print("second")
        c = b * a
    return a, b, c, x + c


def helper_breaks_under_no_grad(x):
    with torch.no_grad():
        y = printing_helper(x)
    return y, y.requires_grad, x * 2


def disabled_through_a_local(x):
    fn = opaque_double
    y = x + 1
    return fn(y) - 1


def disabled_with_star_args(x, w):
    pair = (x + 1, w)
    return observe_and_add(*pair) * 2


def disabled_with_keywords(x):
    return opaque_double(x=x.cos()) + 1


@capture.disable
def observe_and_add(a, b):
    return a + b


# -- frames with cell variables (they make closures over their locals) ------------------------
# The resume function takes the frame's cells as its closure; functions made before the break
# are made again over the same cells, so writes through either side are seen by both.

def closure_made_after_break(x):
    y = x.cos()
    print("before the closure")
    scale = lambda t: t * y  # noqa: E731
    return scale(x) + 1


def closure_called_after_break(x):
    y = x.sin()

    def inner(t):
        return t * y + x

    print("closure made")
    return inner(x), inner(y)


def nonlocal_write_after_break(x):
    total = x.sum()

    def add(t):
        nonlocal total
        total = total + t.sum()

    add(x)
    print("added once")
    add(x * 2)
    return total, x * total


def outer_write_seen_by_closure(x):
    y = x + 1
    get = lambda: y * 2  # noqa: E731
    print("made get")
    y = x - 1
    return get(), y


def closure_write_before_break_seen_after(x):
    state = x * 0

    def set_state(value):
        nonlocal state
        state = value

    set_state(x.exp())
    observe("set")
    return state + 1


@capture.disable
def apply_opaque(fn, t):
    return fn(t) + 1


def lambda_over_tensor_to_disabled(x):
    y = x.exp()
    return apply_opaque(lambda t: t * y, x) * 2


def closure_returned_across_break(x):
    y = x * 3
    get = lambda: y  # noqa: E731
    print("returning a closure")
    return get, get() + 1


def argument_cell_rebound_after_break(x, w):
    f = lambda: x * w  # noqa: E731
    print("made f")
    x = x + 1
    return f(), x


def recursive_closure(x):
    def power(t, n):
        return t if n == 0 else power(t, n - 1) * t

    print("power made")
    return power(x, 3)


def break_in_loop_with_closure(x):
    acc = x * 0

    def bump(t):
        nonlocal acc
        acc = acc + t

    for i in range(3):
        bump(x * i)
        print("iteration", i)
    return acc


def closure_reads_frame_closure(x):
    offset = x.mean()

    def outer(t):
        inner = lambda: t * offset  # noqa: E731
        print("inner made")
        return inner()

    return outer(x) + offset


def generator_over_cell(x):
    y = x * 2

    def gen():
        yield y
        yield y + 1

    items = gen()
    print("generator made")
    return tuple(items)


def list_in_a_local_and_a_cell(x):
    items = [x]
    kept = items
    get = lambda: kept  # noqa: E731
    print("one list, two names")
    items.append(x * 2)
    return len(get()), get()[-1], kept is items


def list_from_a_closure_across_break(x):
    items = [x]
    get = lambda: items  # noqa: E731
    same = get()
    print("same list")
    same.append(x + 1)
    return len(items), get() is same, items


def closure_break_inside_no_grad(x):
    total = x * 0

    def add(t):
        nonlocal total
        total = total + t

    with torch.no_grad():
        add(x * 2)
        print("inside no_grad")
        add(x)
    return total, total.requires_grad, x * 3


def view_or_flatten(t):
    try:
        return t.view(5)
    except RuntimeError:  # the op raises for these shapes: the break runs it natively
        return t.flatten()


def caught_op_error_in_callee(x):
    y = x.sin()
    return view_or_flatten(y) * 2


def caught_op_error_in_frame(x):
    y = x.cos()
    try:
        z = y.view(5)
    except RuntimeError:
        z = y + 1
    return z * 2


def two_breaks_with_cells(x):
    acc = x * 0

    def add(t):
        nonlocal acc
        acc = acc + t

    add(x)
    print("one")
    add(x * 2)
    print("two")
    add(x * 3)
    return acc, add is not None


def cell_deleted_before_break(x):
    y = x + 1
    get = lambda: y  # noqa: E731
    del y
    print("deleted")
    return get()  # NameError, as eager's (the lambda runs eagerly)


def cell_deleted_then_rebound(x):
    y = x + 1
    get = lambda: y  # noqa: E731
    del y
    print("deleted")
    y = x * 5
    return get(), y


def return_tuple_wrapper(func):
    """Like transformers' capture_outputs/can_return_tuple: its wrapper's frame makes a closure
    over its locals (the dict comprehension reads `self` and `kwargs`) and the call breaks."""
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        return_dict = kwargs.pop("return_dict", getattr(self, "return_dict", True))
        flags = {name: kwargs.get(name, getattr(self, name, False)) for name in ("output_scaled",)}
        self.running = True
        try:
            outputs = func(self, *args, **kwargs)
        finally:
            self.running = False
        if flags["output_scaled"]:
            outputs["scaled"] = outputs["out"] * 2
        if return_dict is False:
            outputs = tuple(outputs.values())
        return outputs

    return wrapper


class WrappedForward(torch.nn.Module):
    output_scaled = True

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.running = False

    @return_tuple_wrapper
    def forward(self, x):
        h = self.linear(x).relu()
        print("inside the wrapped forward")
        return {"out": h + 1}


class CallsWrappedForward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = WrappedForward()

    def forward(self, x):
        return self.inner(x, return_dict=False)


def cases_at(fn, inputs, graphs, breaks, **options):
    return Case(fn, inputs, graphs=graphs, breaks=breaks, fullgraph=False, category=CATEGORY, **options)


X = args(t(3, 4))
XW = args(t(3, 4), t(3, 4))
BOX = Fresh(lambda variant: Box(torch.zeros(3, 4)))

CASES = [
    # print and logging
    cases_at(print_between_ops, X, (2, 2, 4), 2),
    cases_at(print_a_tensor, X, (2, 2, 4), 2),
    cases_at(print_first, X, (1, 1, 2), 1),
    cases_at(print_last, X, (1, 1, 2), 2),
    cases_at(two_prints, X, (2, 2, 4), 4),
    cases_at(print_with_keywords, X, (2, 2, 4), 2),
    cases_at(logging_call, X, (2, 2, 4), 2),
    # tensor values read into Python
    cases_at(item_then_scale, X, (2, 3, 5), 2),
    cases_at(item_python_arithmetic, X, (2, 3, 5), 2),
    cases_at(item_to_int, X, (2, 3, 5), 2),
    cases_at(tolist_then_python, X, (1, 2, 3), 2),
    cases_at(tolist_back_to_tensor, X, (1, 2, 3), 2),
    cases_at(numpy_then_python, X, (1, 2, 3), 4),
    cases_at(numpy_arithmetic, X, (2, 2, 4), 4),
    cases_at(item_in_condition, X, (2, 3, 5), 2),
    # data-dependent control flow
    cases_at(if_on_tensor, X, (2, 3, 5), 2),
    cases_at(if_else_then_more, X, (2, 3, 5), 2),
    cases_at(nested_ifs, XW, (2, 4, 6), 3),
    cases_at(if_with_and, XW, (2, 4, 6), 3),
    cases_at(if_not_all, X, (2, 2, 4), 2),
    cases_at(conditional_expression, X, (2, 3, 5), 2),
    cases_at(bool_of_tensor, X, (2, 3, 5), 2),
    cases_at(while_on_tensor, X, (1, 2, 3), 3),
    # C extensions and untraceable functions
    cases_at(calls_time, X, (2, 3, 5), 2),
    cases_at(calls_numpy_function, X, (1, 1, 2), 4),
    cases_at(calls_zlib, X, (2, 2, 4), 2),
    cases_at(calls_builtin_hash, X, (1, 1, 2), 3),
    cases_at(calls_random_seeded, X, (0, 0, 0), 1, fallback='descriptor Random.random'),
    cases_at(calls_disabled, X, (2, 2, 4), 2),
    cases_at(disabled_result_used_twice, X, (2, 2, 4), 2),
    cases_at(disabled_mutates_list, args(t(3, 4), []), (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(allowed_in_graph, X, (1, 1, 2), 0),
    # generators
    cases_at(list_of_printing_generator, X, (1, 1, 2), 2),
    cases_at(sum_of_printing_generator, X, (1, 1, 2), 2),
    cases_at(loop_over_printing_generator, X, (0, 0, 0), 0, fallback='graph break at FOR_ITER'),
    # try / except
    cases_at(print_inside_try, X, (2, 2, 4), 2),
    cases_at(exception_resumes_in_handler, X, (1, 1, 2), 2),  # the handler runs uncompiled
    cases_at(try_finally_around_break, X, (2, 2, 4), 2),
    cases_at(exception_escapes, X, (1, 1, 2), 2),
    # grad mode
    cases_at(print_inside_no_grad, args(t(3, 4, requires_grad=True)), (2, 2, 4), 2),
    cases_at(print_inside_enable_grad_inside_no_grad, args(t(3, 4, requires_grad=True)), (2, 2, 4), 2),
    cases_at(print_inside_set_grad_enabled, args(t(3, 4, requires_grad=True)), (2, 2, 4), 2),
    cases_at(no_grad_then_break_outside, args(t(3, 4, requires_grad=True)), (2, 2, 4), 2),
    cases_at(set_grad_enabled_call_then_break, args(t(3, 4, requires_grad=True)), (1, 1, 2), 2),
    cases_at(if_on_tensor_inside_no_grad, args(t(3, 4, requires_grad=True)), (2, 3, 5), 2),
    # inlined calls
    cases_at(calls_printing_helper, X, (4, 4, 8), 4),
    cases_at(calls_nested_printing_helper, X, (5, 5, 10), 6),
    cases_at(calls_item_helper, X, (4, 5, 9), 4),
    cases_at(calls_printing_helper_twice, X, (2, 2, 4), 6),
    cases_at(None, args(t(3, 4)), (3, 3, 6), 4, module=Outer, name="submodule_forward_prints"),
    cases_at(None, args(t(3, 4)), (3, 3, 6), 3, module=MethodPrints, name="module_method_prints"),
    # loops
    cases_at(print_in_for_loop, X, (1, 1, 2), 2),
    cases_at(break_in_loop_over_list, args([t(3), t(3)]), (1, 1, 2), 2),
    cases_at(loop_after_break, X, (1, 1, 2), 1),
    cases_at(loop_before_break, X, (2, 2, 4), 2),
    # side effects across the break
    cases_at(list_mutation_across_break, args(t(3, 4), []), (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(dict_mutation_across_break, args(t(3, 4), {}), (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(object_attribute_across_break, args(t(3, 4), BOX), (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(global_write_across_break, X, (1, 2, 3), 3, globals=("OBSERVED", "STATE")),
    cases_at(inplace_mutations_around_break, X, (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(inplace_then_print_then_inplace_view, X, (2, 2, 4), 2),
    cases_at(list_made_inside_across_break, X, (2, 2, 4), 2),
    cases_at(aliased_list_across_break, X, (1, 1, 2), 2),
    cases_at(input_list_returned_across_break, args(t(3, 4), [1, 2]), (1, 1, 2), 1),
    cases_at(None, args(t(3, 4)), (2, 4, 6), 3, module=Counter, name="module_state_across_break",
             globals=("OBSERVED",)),
    cases_at(effects_in_program_order, args(t(3, 4), []), (1, 1, 2), 1, globals=("OBSERVED", "STATE")),
    # calling conventions and values carried across
    cases_at(returns_tuple_across_break, args(t(3, 4), t(4, 5, grows=False)), (2, 2, 4), 2),
    cases_at(star_args_across_break, args(t(3, 4), t(2), t(5)), (1, 1, 2), 2),
    cases_at(keyword_only_across_break, X, (1, 1, 2), 2),
    cases_at(break_uses_many_locals, X, (2, 2, 4), 2),
    cases_at(closure_made_inside, X, (1, 1, 2), 1),
    cases_at(lambda_in_a_local, X, (1, 1, 2), 1),
    cases_at(two_breaks_inside_no_grad, args(t(3, 4, requires_grad=True)), (3, 3, 6), 4),
    cases_at(helper_breaks_under_no_grad, args(t(3, 4, requires_grad=True)), (3, 3, 6), 4),
    cases_at(disabled_through_a_local, X, (2, 2, 4), 2),
    cases_at(disabled_with_star_args, XW, (2, 2, 4), 2),
    cases_at(disabled_with_keywords, X, (2, 2, 4), 2),
    cases_at(break_on_module_call_result, args(t(3, 4), t(5, 4, grows=False)), (2, 2, 4), 2),
    # frames with cell variables
    cases_at(closure_made_after_break, X, (2, 2, 4), 2),
    cases_at(closure_called_after_break, X, (2, 2, 4), 2),
    cases_at(nonlocal_write_after_break, X, (2, 2, 4), 2),
    cases_at(outer_write_seen_by_closure, X, (2, 2, 4), 2),
    cases_at(closure_write_before_break_seen_after, X, (2, 2, 4), 2, globals=("OBSERVED",)),
    cases_at(lambda_over_tensor_to_disabled, X, (2, 2, 4), 2),
    cases_at(closure_returned_across_break, X, (2, 2, 4), 2),
    cases_at(argument_cell_rebound_after_break, XW, (1, 1, 2), 1),
    cases_at(recursive_closure, X, (1, 1, 2), 1),
    cases_at(break_in_loop_with_closure, X, (1, 1, 2), 2),
    cases_at(closure_reads_frame_closure, X, (3, 3, 6), 3),
    cases_at(generator_over_cell, X, (1, 1, 2), 3),
    cases_at(list_in_a_local_and_a_cell, X, (1, 1, 2), 2),
    cases_at(list_from_a_closure_across_break, X, (1, 1, 2), 2),
    cases_at(closure_break_inside_no_grad, args(t(3, 4, requires_grad=True)), (2, 2, 4), 2),
    cases_at(two_breaks_with_cells, X, (3, 3, 6), 4),
    cases_at(cell_deleted_before_break, X, (1, 1, 2), 3, fallback="free variable 'y' read before assignment"),
    cases_at(cell_deleted_then_rebound, X, (2, 2, 4), 2),
    # a torch call that raises inside a `try` block breaks there; its `except` runs eagerly
    cases_at(caught_op_error_in_callee, args(t(2, 3, grows=False)), (2, 2, 2), 2),
    cases_at(caught_op_error_in_frame, args(t(2, 3, grows=False)), (1, 1, 1), 1),
    cases_at(None, X, (3, 3, 6), 4, module=WrappedForward, name="wrapper_with_cells_breaks"),
    cases_at(None, X, (3, 3, 6), 6, module=CallsWrappedForward, name="wrapper_with_cells_breaks_inlined"),
]
