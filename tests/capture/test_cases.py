"""Supported straight-line functions: eager vs compiled over three calls (same inputs,
new values, new shape), each captured whole (fullgraph=True)."""
import copy
import math
import operator
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

import capture

SCALE = 0.5
WEIGHT = torch.randn(4)
ACTIVATIONS = (torch.relu, torch.tanh)


def pointwise_mix(x, y):
    a = torch.sin(x) * 2.0 + y
    b = a.relu() - x / 3
    return torch.softmax(b, dim=-1), b.sum(dim=1, keepdim=True), a.mean()


def all_binary_operators(x, y):
    return x + y, x - y, x * y, x / (y.abs() + 1), x // 2, x % 3, x ** 2, 2 ** x, -x, +x


def right_hand_constants(x):
    return 1 - x, 2 / (x.abs() + 1), 3 * x, 1.5 + x


def matmul_operator(x, y):
    return x @ y.t()


def bitwise_on_bool(x, y):
    a, b = x > 0, y < 0
    return a & b, a | b, a ^ b, ~a


def comparisons(x, y):
    return x < y, x <= 0.5, x == y, x != y, x >= y, x > 0


def python_number_folding(x):
    n = 3 * 4 + 1
    scale = (n - 1) / 4 ** 0.5
    return x * scale + n // 5 - 7 % 4


def keyword_arguments(x):
    return torch.sum(x, dim=0, keepdim=True), torch.cumsum(input=x, dim=1)


def tensor_methods(x):
    return x.sum(dim=-1), x.exp().log1p(), x.transpose(0, 1).contiguous(), x.clamp(min=-0.5, max=0.5)


def nn_functional(x):
    return F.gelu(x), torch.nn.functional.softmax(x, dim=1), F.leaky_relu(x, negative_slope=0.2)


def return_input_unchanged(x, y):
    return x, y * 2


def return_single_input(x):
    return x


def return_list(x):
    return [x.cos(), x.sin()]


def return_constants_too(x):
    return x + 1, 3, "tag", None


def shape_reads(x):
    rows = x.shape[0]
    cols = x.size(1)
    return x.reshape(rows * cols) / x.dim(), x.view(-1, cols).sum(0), x.numel()


def dtype_reads(x):
    return x.to(x.dtype) * 2, torch.zeros(x.shape, dtype=x.dtype), x.float().mean()


def globals_read(x):
    return x * SCALE + WEIGHT


def default_arguments(x, alpha=2.0, dim=1):
    return torch.softmax(x * alpha, dim=dim)


def constant_argument(x, k):
    return x * k + k


def reductions(x):
    return x.amax(dim=0), x.min(), torch.var_mean(x, dim=1), x.norm()


def multi_output_op(x):
    values, indices = torch.max(x, dim=1)
    return values * 2, indices


def named_result_fields(x):
    result = torch.max(x, dim=0)
    return result.values + 1, result.indices


def indexing(x):
    return x[0], x[:, 1], x[1:, ::2], x[None, ..., -1], x[..., None]


def tuple_constant_indexing(x):
    dims = (1, 0)
    sizes = [2, 3]
    return x.permute(dims)[0] * sizes[1], dims


def torch_creation(x):
    return torch.ones_like(x) + torch.arange(4.0), torch.full((2, 4), 3.0)


def local_rebinding(x):
    y = x + 1
    y = y * y
    y = torch.sqrt(y)
    return y


def unpacking(x):
    a, b = x.chunk(2, dim=0)
    return a - b


def stack_and_cat(x, y):
    return torch.cat([x, y], dim=0), torch.stack((x, y)), torch.where(x > y, x, y)


def math_module(x):
    return x * math.pi + math.sqrt(2.0)


def operator_module(x, y):
    return operator.mul(x, y), operator.neg(x)


def grad_inputs(x, w):
    return (x * w).tanh().sum()


def constant_branch(x, mode="relu"):
    if mode == "relu":
        return torch.relu(x)
    return torch.tanh(x)


def len_and_isinstance(x):
    if isinstance(x, torch.Tensor):
        return x * len(x)
    return x


def tensor_attributes(x):
    return x.T + 1, x.mT.sum(0), x.ndim


def global_tuple_of_functions(x):
    first = ACTIVATIONS[0]
    return first(x), ACTIVATIONS[1](x)


def none_checks(x, bias=None):
    if bias is None:
        return x * 2
    return x + bias


@dataclass
class Case:
    fn: Callable
    make_args: Callable  # (rows, seed) -> list of args
    graphs: int = 1      # graphs after the first call
    reshapes: bool = True  # a new row count should recompile

    @property
    def id(self):
        return self.fn.__name__


def tensors(count, cols=4, **kw):
    def make(rows, seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(rows, cols, generator=gen, **kw) for _ in range(count)]
    return make


def with_extra(make, *extra):
    return lambda rows, seed: make(rows, seed) + list(extra)


CASES = [
    Case(pointwise_mix, tensors(2)),
    Case(all_binary_operators, tensors(2)),
    Case(right_hand_constants, tensors(1)),
    Case(matmul_operator, tensors(2)),
    Case(bitwise_on_bool, tensors(2)),
    Case(comparisons, tensors(2)),
    Case(python_number_folding, tensors(1)),
    Case(keyword_arguments, tensors(1)),
    Case(tensor_methods, tensors(1)),
    Case(nn_functional, tensors(1)),
    Case(return_input_unchanged, tensors(2)),
    Case(return_single_input, tensors(1), graphs=0),
    Case(return_list, tensors(1)),
    Case(return_constants_too, tensors(1)),
    Case(shape_reads, tensors(1)),
    Case(dtype_reads, tensors(1)),
    Case(globals_read, tensors(1)),
    Case(default_arguments, tensors(1)),
    Case(constant_argument, with_extra(tensors(1), 3)),
    Case(reductions, tensors(1)),
    Case(multi_output_op, tensors(1)),
    Case(named_result_fields, tensors(1)),
    Case(indexing, tensors(1)),
    Case(tuple_constant_indexing, lambda rows, seed: tensors(1, cols=rows)(4, seed)),
    Case(torch_creation, lambda rows, seed: [torch.randn(2, 4)], reshapes=False),
    Case(local_rebinding, tensors(1)),
    Case(unpacking, lambda rows, seed: tensors(1)(rows * 2, seed)),
    Case(stack_and_cat, tensors(2)),
    Case(math_module, tensors(1)),
    Case(operator_module, tensors(2)),
    Case(grad_inputs, lambda rows, seed: [torch.randn(rows, 4), torch.randn(4, requires_grad=True)]),
    Case(constant_branch, tensors(1)),
    Case(len_and_isinstance, tensors(1)),
    Case(tensor_attributes, tensors(1)),
    Case(global_tuple_of_functions, tensors(1)),
    Case(none_checks, tensors(1)),
]


def _assert_same(actual, expected):
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected)
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected), (type(actual), type(expected))
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_same(a, e)
    else:
        assert actual == expected


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case(case, counter, no_warnings):
    compiled = capture.compile(case.fn, backend=counter, fullgraph=True)
    calls = [(3, 0, case.graphs), (3, 1, case.graphs), (5, 2, case.graphs + (1 if case.reshapes and case.graphs else 0))]
    for rows, seed, expected_graphs in calls:
        args = case.make_args(rows, seed)
        eager_args, compiled_args = copy.deepcopy(args), copy.deepcopy(args)
        expected = case.fn(*eager_args)
        actual = compiled(*compiled_args)
        _assert_same(actual, expected)
        _assert_same(compiled_args, eager_args)  # inputs are not mutated differently
        assert counter.count == expected_graphs, (rows, seed)


def test_returning_input_gives_the_same_object(counter):
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    compiled = capture.compile(return_input_unchanged, backend=counter, fullgraph=True)
    out = compiled(x, y)
    assert out[0] is x
    assert capture.compile(return_single_input, backend=counter)(y) is y


def test_graph_shape_matches_dynamo_convention(counter):
    capture.compile(pointwise_mix, backend=counter, fullgraph=True)(torch.randn(3, 4), torch.randn(3, 4))
    (gm,) = counter.graphs
    ops = [(node.op, node.target) for node in gm.graph.nodes]
    assert ops[:2] == [("placeholder", "L_x_"), ("placeholder", "L_y_")]
    assert ("call_function", torch.sin) in ops
    assert ("call_function", operator.mul) in ops
    assert ("call_method", "relu") in ops
    assert ("call_function", torch.softmax) in ops
    assert ops[-1][0] == "output"
    assert all(isinstance(example, torch.Tensor) for example in counter.example_inputs[0])


def test_global_tensor_is_a_graph_input(counter):
    compiled = capture.compile(globals_read, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    compiled(x)
    placeholders = [node.target for node in counter.graphs[0].graph.nodes if node.op == "placeholder"]
    assert placeholders == ["L_x_", "G_WEIGHT_"]
    global WEIGHT
    saved = WEIGHT
    try:
        WEIGHT = torch.randn(4)  # same metadata: no recompile, new value used
        torch.testing.assert_close(compiled(x), globals_read(x))
        assert counter.count == 1
    finally:
        WEIGHT = saved


def test_decorator_forms(counter):
    @capture.compile
    def bare(x):
        return x

    @capture.compile(backend=counter)
    def with_options(x):
        return x + 1

    assert bare.__name__ == "bare"
    torch.testing.assert_close(with_options(torch.ones(2)), torch.full((2,), 2.0))
    assert counter.count == 1


def test_closure_variables(counter):
    factor = 3.0

    def scaled(x):
        return x * factor

    compiled = capture.compile(scaled, backend=counter, fullgraph=True)
    torch.testing.assert_close(compiled(torch.ones(2)), torch.full((2,), 3.0))


def test_varargs_become_indexed_sources(counter):
    def f(x, *rest, scale=2):
        return x * scale + rest[0], rest

    compiled = capture.compile(f, backend=counter, fullgraph=True)
    a, b = torch.ones(2), torch.ones(2)
    out = compiled(a, b)
    assert out[1] is not None and out[1][0] is b
    torch.testing.assert_close(out[0], f(a, b)[0])
    with pytest.raises(IndexError):  # the user's error, raised by the real code
        compiled(a)


def test_records_and_bytecode_log(counter, caplog):
    import logging
    caplog.set_level(logging.DEBUG, logger="kiln.bytecode")
    capture.compile(pointwise_mix, backend=counter)(torch.randn(2, 4), torch.randn(2, 4))
    (record,) = capture.compiled_records()
    assert record.name == "pointwise_mix" and record.graph is counter.graphs[0]
    assert record.reason is None and "SIZE" in record.guards
    assert "normalised:" in caplog.text and "LOAD_ATTR 'sin'" in caplog.text
