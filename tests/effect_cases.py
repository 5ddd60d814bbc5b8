"""Programs with in-place ops, writes through views, out= ops and outputs that alias: shared by the
functionalization tests (tests/prims) and the back-end tests (tests/codegen). Each case is
(fn, make_inputs); make_inputs() builds fresh, equal inputs on every call (seeded)."""

import torch


def _seeded(factory):
    def make():
        torch.manual_seed(0)
        return list(factory())

    return make


def _r(*shape):
    return torch.randn(*shape)


def _i(*shape):
    return torch.randint(-5, 6, shape)


def _b(*shape):
    return torch.rand(*shape) > 0.5


# -- in-place ops on inputs and intermediates ---------------------------------------------------
def add_into_input(x):
    x.add_(1)
    return x


def only_mutates(x, y):
    x.mul_(y)


def chain_on_input(x):
    x.add_(1).mul_(2)
    torch.relu_(x)
    return x * 1


def intermediate_in_place(x):
    y = x * 2
    y.add_(1)
    y.clamp_(-1, 1)
    return y + x


def fill_zero_copy(x, y, z):
    x.fill_(3.5)
    y.zero_()
    z.copy_(x[0])  # broadcast copy
    return x + y


def copy_converts_dtype(x, i):
    x.copy_(i)
    return x


def read_view_after_base_write(x):
    v = x[0]
    x.mul_(2)
    return v + 1


def write_view_read_others(x):
    a = x[0]
    b = x[:, 0]
    a.add_(10)
    return b * 1, x * 1


def view_reshape_write(x):
    x.view(-1).add_(1)
    return x


def setitem_tensor(x, v):
    x[0] = v
    return x.sum()


def setitem_scalar_slice(x):
    x[:, 1:] = 0.5
    return x


def augmented_slice(x):
    x[:, 1:] *= 2
    return x


def transpose_write(x):
    x.t().mul_(2)
    x.transpose(0, 1)[1].sub_(1)
    return x


def chain_of_views(x):
    x.t()[1:].select(1, 0).mul_(3)
    return x


def diagonal_write(x):
    x.diagonal().add_(1)
    return x


def strided_and_negative_writes(x):
    x[::2] = 0.25
    x[-1] += 1
    x.diagonal(1).zero_()
    x.view(2, -1)[1].mul_(2)
    x.movedim(0, 1).narrow(0, 1, 2).neg_()
    return x


def squeeze_unsqueeze_write(x):
    x.unsqueeze(0).squeeze(0)[1].fill_(-1)
    return x


def permute_write(x):
    x.permute(2, 0, 1)[0].add_(5)
    return x


def split_write(x):
    a, b = x.split(3)
    a.mul_(2)
    return b + 0, x


def unbind_write(x):
    for k, row in enumerate(x.unbind(0)):
        row.add_(k)
    return x


def two_views_in_turn(x):
    x[0].add_(1)
    x[:, 0].mul_(2)
    return x.sum(1)


def copy_of_an_input_written_first(x, y):
    z = y.clone()  # the clone is y's old value (Kiln's prims make it y itself)
    y.add_(1)
    x.copy_(z)  # so x's copy-back must not read y after y's own copy-back


def overlapping_copy(x):
    x[1:].copy_(x[:-1].clone())
    return x


def index_put_into_input(x, idx, v):
    x[idx] = v
    return x


def index_put_accumulate(x, idx, v):
    x.index_put_((idx,), v, accumulate=True)
    return x


def masked_fill_in_place(x, m):
    x.masked_fill_(m, 0.0)
    return x


def as_strided_write(x):
    x.as_strided((2, 2), (1, 2)).add_(1)
    return x


def read_unfold_and_expand_after_write(x):
    u = x.unfold(0, 2, 2)
    e = x.expand(3, 6)
    x.add_(1)
    return u * 1, e + 0


def eq_in_place_casts(x, y):
    x.eq_(y)
    return x


def int_ops(x, y):
    x.add_(3)
    x[1] = 7
    x.bitwise_and_(y)
    x //= 2
    return x


def bool_ops(m, n):
    m.logical_not_()
    m.logical_and_(n)
    m[0] = True
    return m


def out_variant(x, y, z):
    torch.add(x, y, out=z)
    return z


def out_variant_into_view(x, z):
    torch.mul(x, 2, out=z[1])
    return z


def out_variant_two_outputs(x, values, indices):
    torch.max(x, 1, out=(values, indices))
    return values, indices


def hidden_alias_matmul(a, b):
    y = a @ b  # 3-d @ 2-d: mm, then _unsafe_view of its result
    y.add_(1)
    return y


def mutated_input_returned_with_views(x):
    x.mul_(2)
    return x, x.t(), x.view(-1)[2:]


def noncontiguous_input(xt):
    xt.add_(1)
    xt[0].zero_()
    return xt.sum(0)


def input_with_storage_offset(x):
    x[0].zero_()
    x.mul_(3)
    return x[1:]


def inplace_inplace_versions(x):
    a = x[0]
    x.add_(1)
    b = a * 1
    a.mul_(2)
    c = x[:, 1] + 0
    x.sub_(a * 1)
    return a + 0, b, c


def metadata_of_intermediate(x):
    y = x * 2
    y.t_()
    y[0].add_(1)
    y.unsqueeze_(0)
    return y, x + 0


def metadata_of_input(x, z):
    x.t_()
    x[0].mul_(2)
    z.unsqueeze_(1)
    return x.sum(1), z


def as_strided_in_place_on_input(x):
    x.as_strided_((2, 2), (1, 3), 1)
    return x * 1


# -- outputs that alias, with no mutation --------------------------------------------------------
def views_of_input(x):
    return (x.view(-1), x.t(), x[1:], x.expand(2, 3, 4), x.transpose(0, 1), x.unsqueeze(0), x.diagonal(),
            x.detach(), x[:, ::2])


def input_and_its_view(x):
    return x, x.view(-1), x


def split_input(x):
    return x.split(2)


def view_of_output(x):
    y = x + 1
    return y, y.t()


def view_then_output(x):
    y = x + 1
    return y[0], y


def views_of_hidden_intermediate(x):
    y = x * 2
    return y.t(), y[0], y[1:]


def split_intermediate(x):
    return (x * 2).split(2)


def lone_view_of_intermediate(x):
    return (x + 1).t()


def broadcast_of_intermediate(x):
    return (x + 1).expand(2, 3, 4)


def write_into_expanded_input(x):
    x[0].add_(1)


def write_through_expand(x):
    x.expand(3, 4)[0, 0] = 1.0
    return x


def fill_through_overlapping_unfold(x):
    u = x.unfold(0, 3, 2)
    u[:, 1].fill_(-1.0)
    return u + 0, x


def index_put_into_expanded_intermediate(x, idx, v):
    e = (x + 1).expand(3, 3)
    e.index_put_((idx,), v)  # rows 0 and 2 written, all rows are one: the last write wins
    return e * 1


def aliased_inputs_written(x, y):
    x.add_(1)
    return y * 1


def overlapping_input_slices_written(a, b, c):
    a.mul_(2)
    b[0] = c[1] + 1  # c[1] is the base's element 2, which is a[1]: read after a's write
    return a + b.sum(), c * 1


def aliased_inputs_written_through_each(t, row, col):
    row.add_(1)
    col.mul_(-2)
    t[0, 0] = 9.0
    return row * 1, col + t.sum()


def _offset_input():
    base = torch.randn(4, 4)
    return [base[1:]]


CASES = {
    "add_into_input": (add_into_input, lambda: [_r(3, 4)]),
    "only_mutates": (only_mutates, lambda: [_r(3, 4), _r(4)]),
    "chain_on_input": (chain_on_input, lambda: [_r(3, 4)]),
    "intermediate_in_place": (intermediate_in_place, lambda: [_r(3, 4)]),
    "fill_zero_copy": (fill_zero_copy, lambda: [_r(3, 4), _r(3, 4), _r(2, 4)]),
    "copy_converts_dtype": (copy_converts_dtype, lambda: [_r(3, 4), _i(4)]),
    "read_view_after_base_write": (read_view_after_base_write, lambda: [_r(3, 4)]),
    "write_view_read_others": (write_view_read_others, lambda: [_r(3, 4)]),
    "view_reshape_write": (view_reshape_write, lambda: [_r(3, 4)]),
    "setitem_tensor": (setitem_tensor, lambda: [_r(3, 4), _r(4)]),
    "setitem_scalar_slice": (setitem_scalar_slice, lambda: [_r(3, 4)]),
    "augmented_slice": (augmented_slice, lambda: [_r(3, 4)]),
    "transpose_write": (transpose_write, lambda: [_r(3, 4)]),
    "chain_of_views": (chain_of_views, lambda: [_r(3, 4)]),
    "diagonal_write": (diagonal_write, lambda: [_r(4, 4)]),
    "strided_and_negative_writes": (strided_and_negative_writes, lambda: [_r(4, 5)]),
    "squeeze_unsqueeze_write": (squeeze_unsqueeze_write, lambda: [_r(3, 4)]),
    "permute_write": (permute_write, lambda: [_r(2, 3, 4)]),
    "split_write": (split_write, lambda: [_r(5, 3)]),
    "unbind_write": (unbind_write, lambda: [_r(3, 4)]),
    "two_views_in_turn": (two_views_in_turn, lambda: [_r(3, 4)]),
    "copy_of_an_input_written_first": (copy_of_an_input_written_first, lambda: [_r(3, 4), _r(3, 4)]),
    "overlapping_copy": (overlapping_copy, lambda: [_r(4, 3)]),
    "index_put_into_input": (index_put_into_input, lambda: [_r(5, 3), torch.tensor([0, 3]), _r(2, 3)]),
    "index_put_accumulate": (index_put_accumulate, lambda: [_r(5, 3), torch.tensor([1, 1, 4]), _r(3, 3)]),
    "masked_fill_in_place": (masked_fill_in_place, lambda: [_r(3, 4), _b(3, 4)]),
    "as_strided_write": (as_strided_write, lambda: [_r(3, 4)]),
    "read_unfold_and_expand_after_write": (read_unfold_and_expand_after_write, lambda: [_r(6)]),
    "eq_in_place_casts": (eq_in_place_casts, lambda: [_i(3, 4).float(), _i(3, 4).float()]),
    "int_ops": (int_ops, lambda: [_i(3, 4), _i(3, 4)]),
    "bool_ops": (bool_ops, lambda: [_b(3, 4), _b(3, 4)]),
    "out_variant": (out_variant, lambda: [_r(3, 4), _r(4), _r(3, 4)]),
    "out_variant_into_view": (out_variant_into_view, lambda: [_r(4), _r(3, 4)]),
    "out_variant_two_outputs": (out_variant_two_outputs,
                                lambda: [_r(3, 4), torch.empty(3), torch.empty(3, dtype=torch.int64)]),
    "hidden_alias_matmul": (hidden_alias_matmul, lambda: [_r(2, 3, 4), _r(4, 5)]),
    "mutated_input_returned_with_views": (mutated_input_returned_with_views, lambda: [_r(3, 4)]),
    "noncontiguous_input": (noncontiguous_input, lambda: [_r(4, 3).t()]),
    "input_with_storage_offset": (input_with_storage_offset, _offset_input),
    "inplace_inplace_versions": (inplace_inplace_versions, lambda: [_r(3, 3)]),
    "metadata_of_intermediate": (metadata_of_intermediate, lambda: [_r(3, 4)]),
    "metadata_of_input": (metadata_of_input, lambda: [_r(3, 4), _r(5)]),
    "as_strided_in_place_on_input": (as_strided_in_place_on_input, lambda: [_r(3, 4)]),
    "views_of_input": (views_of_input, lambda: [_r(3, 4)]),
    "input_and_its_view": (input_and_its_view, lambda: [_r(3, 4)]),
    "split_input": (split_input, lambda: [_r(5, 3)]),
    "view_of_output": (view_of_output, lambda: [_r(3, 4)]),
    "view_then_output": (view_then_output, lambda: [_r(3, 4)]),
    "views_of_hidden_intermediate": (views_of_hidden_intermediate, lambda: [_r(3, 4)]),
    "split_intermediate": (split_intermediate, lambda: [_r(5, 3)]),
    "lone_view_of_intermediate": (lone_view_of_intermediate, lambda: [_r(3, 4)]),
    "broadcast_of_intermediate": (broadcast_of_intermediate, lambda: [_r(3, 4)]),
    # writes to memory several elements share, or through a view with no inverse (write_on_copy.py)
    "write_into_expanded_input": (write_into_expanded_input, lambda: [_r(4).expand(3, 4)]),
    "write_through_expand": (write_through_expand, lambda: [_r(1, 4)]),
    "fill_through_overlapping_unfold": (fill_through_overlapping_unfold, lambda: [_r(7)]),
    "index_put_into_expanded_intermediate": (index_put_into_expanded_intermediate,
                                             lambda: [_r(3), torch.tensor([2, 0, 2]), _r(3, 3)]),
    # graph inputs sharing memory the graph writes: views of one synthetic base
    "aliased_inputs_written": (aliased_inputs_written, lambda: (lambda b: [b, b.view(-1)])(_r(2, 3))),
    "overlapping_input_slices_written": (overlapping_input_slices_written,
                                         lambda: (lambda b: [b[1:5], b[3:], b[::2]])(_r(8))),
    "aliased_inputs_written_through_each": (aliased_inputs_written_through_each,
                                            lambda: (lambda b: [b.t(), b[1], b[:, 0]])(_r(3, 3))),
    # resize_ within the tensor's own elements: a view of its old self (the input is restrided after)
    "resize_": (lambda x: x.resize_(6), lambda: [_r(2, 3)]),
    "resize_intermediate": (lambda x: (x * 1).resize_(6) + 1, lambda: [_r(2, 3)]),
    "resize_shrink_then_write": (lambda x: x.resize_(2, 2).mul_(3), lambda: [_r(2, 3)]),
}
CASES = {name: (fn, _seeded(make)) for name, (fn, make) in CASES.items()}

# Programs Kiln refuses (UnsupportedGraph), with the reason they must give; eager still runs them.
REFUSED = {
    # the grown elements are uninitialized memory: written before anything reads them (eager's and
    # Kiln's uninitialized bytes differ from run to run)
    "resize_grow": (lambda x: x.resize_(8).index_fill_(0, torch.tensor([6, 7]), -0.0), lambda: [_r(2, 3)],
                    "beyond the tensor's own elements"),
    "resize_grow_intermediate": (lambda x: (x * 1).resize_(8)[:6] + 1, lambda: [_r(2, 3)],
                                 "beyond the tensor's own elements"),
    "resize_transposed": (lambda x: x.t().resize_(6), lambda: [_r(2, 3)], "beyond the tensor's own elements"),
}
REFUSED = {name: (fn, _seeded(make), why) for name, (fn, make, why) in REFUSED.items()}


# native_batch_norm in training writes its running stats, which its schema does not say. (Not in CASES:
# its functional form is a multi-output ATen fallback the back end cannot compile yet.)
def batch_norm_training(x, running_mean, running_var, w, b):
    return torch.nn.functional.batch_norm(x, running_mean, running_var, w, b, training=True, momentum=0.3) * 1


def batch_norm_inputs():
    torch.manual_seed(0)
    return [_r(8, 4, 5), _r(4), torch.rand(4) + 0.5, _r(4), _r(4)]
