"""Plain-Python functions the resume and break checks run, with argument factories: loops,
try/except/finally, with blocks (SetFlag acts like torch.no_grad()), method calls, closures,
comprehensions, keyword and star arguments, mutation of arguments. Torch-free."""
from __future__ import annotations

FLAG = [False]  # a global mode, like torch's grad mode


class SetFlag:
    """A context manager like torch.no_grad(): sets a global mode on entry, restores it on exit.
    Re-entering it (as resume functions do) must leave the same mode."""

    def __init__(self, value=True):
        self.value = value

    def __enter__(self):
        self.previous = FLAG[0]
        FLAG[0] = self.value
        return self

    def __exit__(self, *exc_info):
        FLAG[0] = self.previous
        return False


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def scaled(self, factor, *, offset=0):
        return Point(self.x * factor + offset, self.y * factor + offset)

    def norm1(self):
        return abs(self.x) + abs(self.y)

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return f"Point({self.x}, {self.y})"


def straight_line(a, b):
    c = a * 2 + b
    d = [c, a - b, (a, b)]
    e = {"c": c, "d": len(d)}
    return c, d, e, str(c) + "!"


def method_calls(p, k):
    q = p.scaled(k, offset=1)
    r = q.scaled(2).norm1()
    return [p.norm1(), q.norm1(), r, max(p.x, q.y, key=abs)]


def nested_calls(xs):
    return sorted(map(abs, xs), key=lambda v: -v)[:2] + [len(str(sum(xs)))]


def for_loop(n):
    total = 0
    items = []
    for i in range(n):
        if i % 2:
            continue
        total = total + i * i
        items.append(total)
    return total, items


def while_loop(n):
    i, acc = 0, 1
    while i < n:
        acc = acc * 3 % 1000
        i += 1
        if acc == 27:
            break
    return i, acc


def nested_loops(rows):
    out = []
    for row in rows:
        line = 0
        for value in row:
            line = line * 10 + value
        out.append(line)
    return out


def try_except(values):
    results = []
    for value in values:
        try:
            results.append(10 // value)
        except ZeroDivisionError:
            results.append(None)
        else:
            results.append("ok")
        finally:
            results.append(len(results))
    return results


def try_raises(x):
    try:
        if x > 2:
            raise ValueError(f"big {x}")
        y = x + 1
    except ValueError as error:
        y = str(error)
    return y


def with_block(x):
    seen = [FLAG[0]]
    with SetFlag():
        seen.append(FLAG[0])
        y = x * 2
        seen.append(FLAG[0])
    seen.append(FLAG[0])
    return y, seen


def nested_with(x):
    seen = []
    with SetFlag(True):
        with SetFlag(False):
            seen.append(FLAG[0])
            x = x + 1
        seen.append(FLAG[0])
        x = x * 2
    seen.append(FLAG[0])
    return x, seen


def with_in_try(x):
    seen = []
    try:
        with SetFlag():
            seen.append(FLAG[0])
            if x > 1:
                raise KeyError(x)
            seen.append(x)
    except KeyError:
        seen.append(("caught", FLAG[0]))
    return seen


def try_in_with(x):
    seen = []
    with SetFlag():
        try:
            seen.append(1 // x)
        except ZeroDivisionError:
            seen.append(("zero", FLAG[0]))
        seen.append(FLAG[0])
    return seen, FLAG[0]


def with_as_and_return(x):
    with SetFlag() as ctx:
        value = (ctx.value, FLAG[0], x)
        return value


def loop_in_with(n):
    seen = []
    with SetFlag():
        for i in range(n):
            seen.append((i, FLAG[0]))
    return seen


def boolean_ops(a, b):
    c = a or b
    d = a and b
    e = (a or 0) + (b and 2)
    return c, d, e, not a, a if b else -1


def comprehension(xs):
    squares = [x * x for x in xs if x % 2]
    pairs = {x: [y for y in range(x)] for x in xs}
    return squares, pairs, sum(x for x in [1, 2, 3])


def keyword_call(a, b):
    text = "{x}-{y}".format(x=a, y=b)
    point = Point(x=a, y=b).scaled(factor=3, offset=-1)
    return text, point, dict(a=a, b=b)


def starargs(*args, **kwargs):
    total = sum(args)
    names = sorted(kwargs)
    return total, names, max(*args, 0), {**kwargs, "n": len(args)}


def mutate_argument(items, extra):
    items.append(extra)
    items[0] = items[0] * 2
    items.extend([len(items)])
    return len(items)


def make_closure(k):
    def add(x, y=1):
        z = x + k
        for i in range(y):
            z = z * 2 + k
        return z, k
    return add


closure = make_closure(5)


def unpacking(pairs):
    out = []
    for a, (b, c) in pairs:
        first, *rest = [a, b, c]
        out.append((first, rest))
    return out


def string_building(name, count):
    parts = []
    for index in range(count):
        parts.append(f"{name}[{index}]={index * index:03d}")
    return ", ".join(parts)


def deletes(x):
    y = x + 1
    z = y * 2
    del y
    return z, "y" in dir()


def cell_counter(start, step):
    total = start

    def add():
        nonlocal total
        total = total + step

    for _ in range(2):
        add()
    add()
    return total, step


def cell_lambda(values):
    scale = 3
    f = lambda v: v * scale  # noqa: E731
    out = [f(v) for v in values]
    scale = 10
    out.append(f(1))
    return out, scale


def cell_argument(x, y):
    def get():
        return x + y
    first = get()
    x = x * 10
    return first, get(), x


def cell_recursive(n):
    def fact(k):
        return 1 if k <= 1 else k * fact(k - 1)
    return fact(n), fact(n - 1)


class _Counter:
    def __init__(self, start):
        self.start = start

    def step(self, k):
        return self.start + k

    def __repr__(self):
        return f"{type(self).__name__}({self.start})"


class _SuperCalls(_Counter):
    """Zero-argument super(): 3.11 reads `self` from the frame's first slot, and so does a bare
    super() call on 3.12+ (super().name is LOAD_SUPER_ATTR there, which loads self itself)."""

    def attribute_form(self, k):
        first = super().step(k)
        other = self.start
        return first + super().step(first) + other

    def bare_form(self, k):
        total = 0
        for index in range(k):
            parent = super()
            total += parent.step(index)
        return total


# (function, make_args) pairs; make_args returns fresh (args, kwargs) for each run.
CASES = {
    "straight_line": (straight_line, lambda: ((3, 4), {})),
    "method_calls": (method_calls, lambda: ((Point(1, -2), 3), {})),
    "nested_calls": (nested_calls, lambda: (([3, -7, 5],), {})),
    "for_loop": (for_loop, lambda: ((7,), {})),
    "while_loop": (while_loop, lambda: ((6,), {})),
    "nested_loops": (nested_loops, lambda: (([[1, 2], [3, 4, 5]],), {})),
    "try_except": (try_except, lambda: (([2, 0, 5],), {})),
    "try_raises_caught": (try_raises, lambda: ((5,), {})),
    "try_raises_not": (try_raises, lambda: ((1,), {})),
    "with_block": (with_block, lambda: ((4,), {})),
    "nested_with": (nested_with, lambda: ((4,), {})),
    "with_in_try": (with_in_try, lambda: ((3,), {})),
    "with_in_try_no_raise": (with_in_try, lambda: ((1,), {})),
    "try_in_with": (try_in_with, lambda: ((0,), {})),
    "with_as_and_return": (with_as_and_return, lambda: ((2,), {})),
    "loop_in_with": (loop_in_with, lambda: ((3,), {})),
    "boolean_ops": (boolean_ops, lambda: ((0, 5), {})),
    "boolean_ops_truthy": (boolean_ops, lambda: ((3, 0), {})),
    "comprehension": (comprehension, lambda: (([1, 2, 3, 4],), {})),
    "keyword_call": (keyword_call, lambda: ((2, 3), {})),
    "starargs": (starargs, lambda: ((1, 2, 3), {"b": 1, "a": 2})),
    "mutate_argument": (mutate_argument, lambda: (([1, 2], 9), {})),
    "closure": (closure, lambda: ((2,), {"y": 3})),
    "unpacking": (unpacking, lambda: (([(1, (2, 3)), (4, (5, 6))],), {})),
    "string_building": (string_building, lambda: (("v", 3), {})),
    "deletes": (deletes, lambda: ((1,), {})),
    "cell_counter": (cell_counter, lambda: ((1, 10), {})),
    "cell_lambda": (cell_lambda, lambda: (([1, 2, 3],), {})),
    "cell_argument": (cell_argument, lambda: ((2, 3), {})),
    "cell_recursive": (cell_recursive, lambda: ((5,), {})),
    "super_attribute": (_SuperCalls.attribute_form, lambda: ((_SuperCalls(2), 3), {})),
    "super_bare": (_SuperCalls.bare_form, lambda: ((_SuperCalls(1), 3), {})),
}

