"""In-place tensor ops: recorded in the graph (as TorchDynamo does), so the caller's tensors
change exactly as in eager, and a result that is its own input stays that same object."""
import torch
import torch.nn.functional as F

from . import Case, Fresh, args, t

CATEGORY = "in-place"


def add_inplace_returns_input(x):
    x.add_(1)
    return x


def mul_inplace_by_tensor(x, y):
    x.mul_(y)
    return x * 2


def torch_relu_inplace(x):
    torch.relu_(x)
    return x.sum()


def functional_inplace_flag(x):
    y = F.relu(x, inplace=True)
    return y, y is x


def setitem_int(x):
    x[0] = 0
    return x.sum()


def setitem_slice_tensor(x, y):
    x[:, 1] = y[:, 0]
    return x


def setitem_mask(x):
    x[x > 0] = 0.0
    return x * 2


def augmented_add(x, y):
    x += y
    return x


def augmented_on_row(x):
    x[0] += 1
    return x


def augmented_ops(x, y):
    x *= 2
    x -= y
    x /= 3
    return x


def augmented_integer_ops(x):
    x //= 2
    x %= 3
    x <<= 1
    x |= 1
    return x


def inplace_on_intermediate(x):
    y = x * 2
    y.add_(1)
    return y


def chained_inplace(x):
    x.mul_(2).add_(1).clamp_(min=0)
    return x


def out_argument(x, y, out):
    torch.add(x, y, out=out)
    return out


def out_argument_returned_value(x, out):
    result = torch.sin(x, out=out)
    return result is out, result


def copy_into_input(x, y):
    x.copy_(y * 2)
    return x


def zero_and_fill(x, y):
    x.zero_()
    y.fill_(3.0)
    return x + y


def inplace_on_list_element(x, lst):
    lst[0].add_(x.sum())
    return lst[0]


def read_after_inplace(x):
    before = x * 1
    x.add_(1)
    return before, x * 2, x


def inplace_on_view_changes_base(x):
    row = x[0]
    row.mul_(0)
    return x


def masked_fill_inplace(x):
    x.masked_fill_(x < 0, 0.5)
    return x


def returned_twice(x):
    y = x.add_(1)
    return y, x


def contiguous_is_identity(x):
    return x.contiguous(), x


def to_same_dtype_is_identity(x):
    return x.to(torch.float32), x.float()


def inplace_on_leaf_requiring_grad(w):
    w.add_(1)
    return w


def inplace_on_nonleaf(w):
    y = w * 2
    y.add_(1)
    return y


def inplace_picks_up_grad(x, w):
    x.add_(w)
    return x


def inplace_in_helper_impl(t):
    t.mul_(3)


def inplace_in_inlined_call(x):
    inplace_in_helper_impl(x)
    return x + 1


def init_function(x):
    torch.nn.init.zeros_(x)
    return x


def sub_with_alpha(x, y):
    x.sub_(y, alpha=2)
    return x


def aliased_inputs(x, y):
    x.add_(1)
    return y * 2


def aliased_inputs_factory(variant):
    x = torch.randn(5 if variant == 2 else 3, 4)
    return (x, x) if variant != 1 else (x, x.clone())


def overlap_factory(variant):
    x = torch.randn(5 if variant == 2 else 3, 4)
    return (x, x[1:]) if variant == 1 else (x, torch.randn(5 if variant == 2 else 3, 4)[1:])


def index_add_inplace(x, y):
    x.index_add_(0, torch.tensor([0, 2]), y[:2])
    return x


def inplace_then_out_of_place_chain(x, y):
    z = x + y
    z.exp_()
    z.div_(z.sum())
    return z


def metadata_inplace(x):
    x.unsqueeze_(0)
    return x


BUFFER = torch.zeros(4)


def global_tensor_inplace(x):
    BUFFER.add_(x.sum(0))
    return BUFFER * 1


def kiln_backend_inplace(x, y):
    x.mul_(2)
    return x + y


CASES = [
    Case(add_inplace_returns_input, args(t(3, 4))),
    Case(mul_inplace_by_tensor, args(t(3, 4), t(3, 4))),
    Case(torch_relu_inplace, args(t(3, 4))),
    Case(functional_inplace_flag, args(t(3, 4))),
    Case(setitem_int, args(t(3, 4))),
    Case(setitem_slice_tensor, args(t(3, 4), t(3, 4))),
    Case(setitem_mask, args(t(3, 4))),
    Case(augmented_add, args(t(3, 4), t(3, 4))),
    Case(augmented_on_row, args(t(3, 4))),
    Case(augmented_ops, args(t(3, 4), t(3, 4))),
    Case(augmented_integer_ops, args(t(3, 4, dtype=torch.int64))),
    Case(inplace_on_intermediate, args(t(3, 4))),
    Case(chained_inplace, args(t(3, 4))),
    Case(out_argument, args(t(3, 4), t(3, 4), t(3, 4))),
    Case(out_argument_returned_value, args(t(3, 4), t(3, 4))),
    Case(copy_into_input, args(t(3, 4), t(3, 4))),
    Case(zero_and_fill, args(t(3, 4), t(3, 4))),
    Case(inplace_on_list_element, args(t(3, 4), [t(2, grows=False)])),
    Case(read_after_inplace, args(t(3, 4))),
    Case(inplace_on_view_changes_base, args(t(3, 4))),
    Case(masked_fill_inplace, args(t(3, 4))),
    Case(returned_twice, args(t(3, 4))),
    Case(contiguous_is_identity, args(t(3, 4))),
    Case(to_same_dtype_is_identity, args(t(3, 4))),
    Case(inplace_on_leaf_requiring_grad, args(t(3, 4, requires_grad=True)), graphs=(0, 0, 0)),
    Case(inplace_on_nonleaf, args(t(3, 4, requires_grad=True))),
    Case(inplace_picks_up_grad, args(t(3, 4), t(3, 4, requires_grad=True))),
    Case(inplace_in_inlined_call, args(t(3, 4))),
    Case(init_function, args(t(3, 4))),
    Case(sub_with_alpha, args(t(3, 4), t(3, 4))),
    Case(aliased_inputs, aliased_inputs_factory, graphs=(1, 2, 3),
         recompiles=("is no longer the same object as",)),
    Case(aliased_inputs, overlap_factory, graphs=(1, 2, 3), name="inputs_start_sharing_memory",
         recompiles=("mutated tensor 'x' now shares memory with 'y'",)),
    Case(index_add_inplace, args(t(3, 4), t(3, 4))),
    Case(inplace_then_out_of_place_chain, args(t(3, 4), t(3, 4))),
    Case(metadata_inplace, args(t(3, 4)), graphs=(0, 0, 0), fullgraph=False, breaks=2),  # breaks at the op
    Case(global_tensor_inplace, args(t(3, 4)), globals=("BUFFER",)),
    Case(kiln_backend_inplace, args(t(3, 4), t(3, 4)), backend="kiln", name="kiln_backend_inplace"),
    Case(kiln_backend_inplace, args(t(3, 4), t(3, 4)), backend="eager", name="eager_backend_inplace"),
]
for _case in CASES:
    _case.category = CATEGORY
