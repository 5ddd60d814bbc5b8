"""Inlined user functions, unrolled loops and submodule calls: eager vs compiled over three
calls (same inputs, new values, new shape), each captured whole (fullgraph=True)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from kiln import capture

OFFSET = 0.25


def scale(t, k=2.0, *, shift=OFFSET):
    return t * k + shift


def twice(fn, t):
    return fn(fn(t))


def countdown(t, n):
    if n == 0:
        return t
    return countdown(t * 0.5 + 1, n - 1)


def star(*parts):
    return parts[0] - parts[-1]


def call_global_helper(x):
    return scale(x) + scale(x, 3.0, shift=1.0)


def call_with_keywords(x):
    return scale(k=0.5, t=x)


def pass_function_as_argument(x):
    return twice(torch.tanh, x) + twice(scale, x)


def fixed_depth_recursion(x):
    return countdown(x, 4)


def varargs_callee(x, y):
    return star(x, y, x * 2)


def loop_over_range(x):
    for i in range(3):
        x = x * 2 + i
    return x


def loop_over_list_input(x, ys):
    for y in ys:
        x = x + scale(y)
    return x, len(ys)


def loop_enumerate_zip(x, y):
    total = x
    for i, (a, b) in enumerate(zip([x, y], [y, x])):
        total = total + a * b * i
    for t in reversed((x, y)):
        total = total - t
    return total


def while_on_constant(x):
    n = 0
    while n < x.shape[0]:
        x = x + n
        n += 1
    return x, n


def loop_over_tensor_rows(x):
    out = []
    for row in x:
        out = out + [row.sum()]
    return torch.stack(out)


def loop_with_break(x):
    for k in (1, 2, 3, 4):
        if k == 3:
            break
        x = x * k
    return x


def nested_calls_in_loop(x):
    for _ in range(2):
        x = call_global_helper(x)
    return x


def list_of_tensors(rows, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, 4, generator=gen), [torch.randn(rows, 4, generator=gen) for _ in range(3)]]


def tensors(count):
    def make(rows, seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(rows, 4, generator=gen) for _ in range(count)]
    return make


CASES = [
    (call_global_helper, tensors(1)),
    (call_with_keywords, tensors(1)),
    (pass_function_as_argument, tensors(1)),
    (fixed_depth_recursion, tensors(1)),
    (varargs_callee, tensors(2)),
    (loop_over_range, tensors(1)),
    (loop_over_list_input, list_of_tensors),
    (loop_enumerate_zip, tensors(2)),
    (while_on_constant, tensors(1)),
    (loop_over_tensor_rows, tensors(1)),
    (loop_with_break, tensors(1)),
    (nested_calls_in_loop, tensors(1)),
]


def _assert_same(actual, expected):
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected)
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_same(a, e)
    else:
        assert actual == expected


@pytest.mark.parametrize("fn, make_args", CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_case(fn, make_args, counter, no_warnings):
    compiled = capture.compile(fn, backend=counter, fullgraph=True)
    for rows, seed, graphs in [(3, 0, 1), (3, 1, 1), (5, 2, 2)]:
        args = make_args(rows, seed)
        eager_args, compiled_args = copy.deepcopy(args), copy.deepcopy(args)
        _assert_same(compiled(*compiled_args), fn(*eager_args))
        _assert_same(compiled_args, eager_args)
        assert counter.count == graphs


def test_inlined_ops_land_in_one_graph(counter):
    capture.compile(fixed_depth_recursion, backend=counter, fullgraph=True)(torch.randn(2, 4))
    (gm,) = counter.graphs
    assert sum(node.op == "call_function" for node in gm.graph.nodes) == 8  # 4 x (mul, add)


def test_rebinding_an_inlined_global_recompiles(counter):
    global scale
    compiled = capture.compile(call_with_keywords, backend=counter)
    x = torch.randn(2, 4)
    compiled(x)
    saved = scale
    try:
        scale = lambda t, k=1.0: t - k  # noqa: E731
        torch.testing.assert_close(compiled(x), x - 0.5)
        assert counter.count == 2
    finally:
        scale = saved


def test_changed_default_recompiles(counter):
    compiled = capture.compile(call_global_helper, backend=counter)
    x = torch.randn(2, 4)
    compiled(x)
    saved = scale.__kwdefaults__["shift"]
    try:
        scale.__kwdefaults__["shift"] = 5.0
        torch.testing.assert_close(compiled(x), call_global_helper(x))
        assert counter.count == 2
    finally:
        scale.__kwdefaults__["shift"] = saved


def test_unbounded_recursion_is_unsupported(counter):
    def forever(x, n):
        return countdown(x, 1000)
    with pytest.raises(capture.Unsupported, match="inlining depth"):
        capture.compile(forever, backend=counter, fullgraph=True)(torch.ones(2), 0)


def test_loop_length_from_an_argument_is_guarded(counter):
    def repeat(x, n):
        for _ in range(n):
            x = x + 1
        return x
    compiled = capture.compile(repeat, backend=counter, fullgraph=True)
    x = torch.zeros(2)
    torch.testing.assert_close(compiled(x, 2), torch.full((2,), 2.0))
    torch.testing.assert_close(compiled(x, 3), torch.full((2,), 3.0))
    assert counter.count == 2


def test_mutating_an_input_list_is_replayed(counter):
    def grow(x, xs):
        xs.append(x)
        return x + 1
    xs = []
    x = torch.ones(2)
    capture.compile(grow, backend=counter, fullgraph=True)(x, xs)
    assert len(xs) == 1 and xs[0] is x


class Block(torch.nn.Module):
    """A small pre-norm transformer-style block (attention written out by hand)."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))
        self.scale = (dim // heads) ** -0.5

    def split(self, t):
        batch, length, dim = t.shape
        return t.reshape(batch, length, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = self.split(q), self.split(k), self.split(v)
        attention = F.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        mixed = (attention @ v).transpose(1, 2).reshape(x.shape)
        x = x + self.proj(mixed)
        return x + self.mlp(self.norm2(x))


class Stack(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(4, 2), "b": torch.nn.Linear(4, 2)})
        self.eps = 1e-3

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = torch.relu(layer(x)) + i * self.eps
        return self.heads["a"](x) - self.layers[-1](x)[:, :2] + self.heads["b"](x)


MODULES = {
    "mlp": lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4),
                                       torch.nn.LayerNorm(4)),
    "block": lambda: Block(),
    "stack": lambda: Stack(),
    "convnet": lambda: torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.BatchNorm2d(6),
                                           torch.nn.ReLU()).eval(),
}
INPUTS = {"mlp": lambda rows: torch.randn(rows, 4), "block": lambda rows: torch.randn(2, rows, 8),
          "stack": lambda rows: torch.randn(rows, 4), "convnet": lambda rows: torch.randn(2, 4, rows, rows)}


@pytest.mark.parametrize("name", list(MODULES))
def test_module_with_submodules(name, counter, no_warnings):
    torch.manual_seed(0)
    module = MODULES[name]()
    compiled = capture.compile(module, backend=counter, fullgraph=True)
    for rows, graphs in [(3, 1), (3, 1), (5, 2)]:
        x = INPUTS[name](rows)
        torch.testing.assert_close(compiled(x), module(x))
        assert counter.count == graphs
    placeholders = [n for n in counter.graphs[0].graph.nodes if n.op == "placeholder"]
    assert len(placeholders) == 1 + len(list(module.parameters())) + len(
        [b for b in module.buffers() if b.dtype.is_floating_point])


def test_module_training_flag_is_guarded(counter):
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    compiled = capture.compile(module, backend=counter, fullgraph=True)
    module.eval()
    x = torch.randn(3, 4)
    torch.testing.assert_close(compiled(x), module(x))
    module.train()
    compiled(x)
    assert counter.count == 2
