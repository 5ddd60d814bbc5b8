"""Corpus: straight-line functions (operators, torch functions and Tensor methods, constants,
shapes and dtypes, globals and defaults, indexing, multi-output ops, returned inputs), each
captured whole (fullgraph=True). Inputs are row-seeded (rows.py)."""
import math
import operator

import torch
import torch.nn.functional as F

from .rows import rows_case, tensors, with_extra

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


CASES = [
    rows_case(pointwise_mix, tensors(2)),
    rows_case(all_binary_operators, tensors(2)),
    rows_case(right_hand_constants, tensors(1)),
    rows_case(matmul_operator, tensors(2)),
    rows_case(bitwise_on_bool, tensors(2)),
    rows_case(comparisons, tensors(2)),
    rows_case(python_number_folding, tensors(1)),
    rows_case(keyword_arguments, tensors(1)),
    rows_case(tensor_methods, tensors(1)),
    rows_case(nn_functional, tensors(1)),
    rows_case(return_input_unchanged, tensors(2)),
    rows_case(return_single_input, tensors(1), graphs=0),
    rows_case(return_list, tensors(1)),
    rows_case(return_constants_too, tensors(1)),
    rows_case(shape_reads, tensors(1)),
    rows_case(dtype_reads, tensors(1)),
    rows_case(globals_read, tensors(1)),
    rows_case(default_arguments, tensors(1)),
    rows_case(constant_argument, with_extra(tensors(1), 3)),
    rows_case(reductions, tensors(1)),
    rows_case(multi_output_op, tensors(1)),
    rows_case(named_result_fields, tensors(1)),
    rows_case(indexing, tensors(1)),
    rows_case(tuple_constant_indexing, lambda rows, seed: tensors(1, cols=rows)(4, seed)),
    rows_case(torch_creation, lambda rows, seed: [torch.randn(2, 4)], reshapes=False),
    rows_case(local_rebinding, tensors(1)),
    rows_case(unpacking, lambda rows, seed: tensors(1)(rows * 2, seed)),
    rows_case(stack_and_cat, tensors(2)),
    rows_case(math_module, tensors(1)),
    rows_case(operator_module, tensors(2)),
    rows_case(grad_inputs, lambda rows, seed: [torch.randn(rows, 4), torch.randn(4, requires_grad=True)]),
    rows_case(constant_branch, tensors(1)),
    rows_case(len_and_isinstance, tensors(1)),
    rows_case(tensor_attributes, tensors(1)),
    rows_case(global_tuple_of_functions, tensors(1)),
    rows_case(none_checks, tensors(1)),
]
