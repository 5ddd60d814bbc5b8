"""Guards and recompiles: every assumption the trace made is checked on each call, and a
changed assumption recompiles (the `recompiles` log says which guard failed)."""
import torch

from . import Case, Fresh, args, t

CATEGORY = "guards"


def per_call(*values):
    """An argument that takes values[variant] on each of the three calls."""
    return Fresh(lambda variant: values[variant])


def branch_on_int(x, n):
    if n > 2:
        return x.relu()
    return x.tanh()


def branch_on_bool(x, flag):
    return x.exp() if flag else x.sin()


def branch_on_string(x, mode):
    if mode == "relu":
        return torch.relu(x)
    return torch.nn.functional.gelu(x)


def optional_bias(x, bias=None):
    if bias is None:
        return x * 2
    return x + bias


def float_scale(x, scale):
    return x * scale


def loop_count(x, n):
    for _ in range(n):
        x = x * 2
    return x


def tuple_of_constants(x, dims):
    return x.permute(dims).contiguous()


def loop_over_list(x, lst):
    for item in lst:
        x = x + item
    return x


def nested_constant(x, table):
    return x * table[0][1] + table[1][0]


def shape_in_control_flow(x):
    if x.shape[0] > 4:
        return x.sum(0)
    return x.mean(0)


def dtype_in_control_flow(x):
    if x.dtype == torch.float64:
        return x * 2
    return x + 1


def isinstance_on_argument(x, other):
    if isinstance(other, torch.Tensor):
        return x + other.sum()
    return x * other


def len_of_list(x, lst):
    return x * len(lst)


class Config:
    def __init__(self, activation, scale):
        self.activation = activation
        self.scale = scale


def object_attribute_in_control_flow(x, config):
    if config.activation == "tanh":
        return x.tanh() * config.scale
    return x.relu() * config.scale


MODE = "fast"


def global_constant_in_control_flow(x):
    if MODE == "fast":
        return x * 2
    return x.exp()


def make_closure(power):
    def raise_to(x):
        return x ** power
    return raise_to


closure_constant = make_closure(3)


def two_tensors(x, y):
    return x * y + x


def alias_factory(variant):
    x = torch.randn(5 if variant == 2 else 3, 4)
    return (x, torch.randn(5 if variant == 2 else 3, 4)) if variant != 1 else (x, x)


def requires_grad_factory(variant):
    return (torch.randn(3, 4, requires_grad=variant == 1),)


def stride_factory(variant):
    x = torch.randn(4, 3)
    return (x.t() if variant == 1 else x.t().contiguous(),)


def ndim_factory(variant):
    return (torch.randn(3, 4, 2) if variant == 1 else torch.randn(3, 4),)


def dtype_factory(variant):
    return (torch.randn(3, 4, dtype=torch.float64 if variant == 2 else torch.float32),)


def simple(x):
    return x * 2 + 1


class Gate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.use_relu = True
        self.scale = 0.5

    def forward(self, x):
        y = self.linear(x) * self.scale
        if self.use_relu and self.training:
            return y.relu()
        return y


CASES = [
    Case(branch_on_int, args(t(3, 4), per_call(3, 3, 1))),
    Case(branch_on_int, args(t(3, 4), per_call(3, 1, 1)), graphs=(1, 2, 3), name="branch_on_int_changes",
         recompiles=("value 'n' value mismatch: expected 3, got 1",)),
    Case(branch_on_bool, args(t(3, 4), per_call(True, False, True)), graphs=(1, 2, 3)),
    Case(branch_on_string, args(t(3, 4), per_call("relu", "gelu", "gelu")), graphs=(1, 2, 3),
         recompiles=("value 'mode' value mismatch: expected 'relu', got 'gelu'",)),
    Case(optional_bias, args(t(3, 4), per_call(None, torch.ones(4), None)), graphs=(1, 2, 3)),
    Case(float_scale, args(t(3, 4), per_call(0.5, 0.5, 2.0))),
    Case(float_scale, args(t(3, 4), per_call(2, 2.0, 2)), graphs=(1, 2, 3), name="int_then_float_recompiles",
         recompiles=("value 'scale' value mismatch: expected 2, got 2.0",)),
    Case(loop_count, args(t(3, 4), per_call(2, 3, 3)), graphs=(1, 2, 3)),
    Case(tuple_of_constants, args(t(3, 4), (1, 0))),
    Case(loop_over_list, args(t(3, 4), Fresh(lambda v: [torch.ones(4)] * (3 if v == 2 else 2)))),
    Case(loop_over_list, args(t(3, 4), Fresh(lambda v: [torch.ones(4)] * (3 if v == 1 else 2))),
         graphs=(1, 2, 3), name="list_length_changes", recompiles=("value 'lst' length mismatch: expected 2, got 3",)),
    Case(nested_constant, args(t(3, 4), [[1, 2], [3, 4]])),
    Case(shape_in_control_flow, args(t(3, 4))),
    Case(dtype_in_control_flow, dtype_factory, recompiles=("tensor 'x' dtype mismatch",)),
    Case(isinstance_on_argument, args(t(3, 4), per_call(2, 2, torch.ones(4)))),
    Case(len_of_list, args(t(3, 4), [1, 2, 3])),
    Case(object_attribute_in_control_flow, args(t(3, 4), Fresh(lambda v: Config("tanh" if v != 1 else "relu", 2.0))),
         graphs=(1, 2, 3), recompiles=("value 'config.activation' value mismatch: expected 'tanh', got 'relu'",)),
    Case(global_constant_in_control_flow, args(t(3, 4))),
    Case(closure_constant, args(t(3, 4)), name="closure_constant"),
    Case(two_tensors, alias_factory, graphs=(1, 2, 3), name="inputs_become_aliased",
         recompiles=("tensor 'x' is now the same object as 'y'",)),
    Case(simple, requires_grad_factory, graphs=(1, 2, 2), name="requires_grad_changes",
         recompiles=("tensor 'x' requires_grad mismatch: expected False, got True",)),
    Case(simple, stride_factory, graphs=(1, 2, 2), name="stride_changes",
         recompiles=("tensor 'x' stride mismatch at dim 0: expected 4, got 1",)),
    Case(simple, ndim_factory, graphs=(1, 2, 2), name="ndim_changes",
         recompiles=("tensor 'x' ndim mismatch: expected 2, got 3",)),
    Case(None, args(t(3, 4)), module=Gate, name="module_attributes_in_control_flow"),
]
for _case in CASES:
    _case.category = CATEGORY
