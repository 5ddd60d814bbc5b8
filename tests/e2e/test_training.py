"""Training through both entry points: compiled forward and backward (kiln/training.py) against eager
autograd, under KILN_STRICT=1: every output, every gradient, every mutated buffer."""
import copy
import math
import warnings

import pytest
import torch
import torch.utils.checkpoint

import kiln
from kiln import config, records
from kiln_entries import ENTRY_POINTS

ENTRIES = sorted(ENTRY_POINTS)


pytestmark = pytest.mark.usefixtures("strict")


def _close(got, expected):
    if expected is None or got is None:
        assert got is None and expected is None, (got, expected)
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, equal_nan=True)


def _twins(inputs):
    """Two independent copies of `inputs`, leaves requiring grad where the originals do."""
    def copy_of(x):
        return x.detach().clone().requires_grad_(x.requires_grad) if isinstance(x, torch.Tensor) else x
    return [copy_of(x) for x in inputs], [copy_of(x) for x in inputs]


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_training(entry, fn, inputs, seed=0):
    """fn compiled and eager on copies of inputs: outputs, gradients of every input requiring grad
    (random grad_outputs, one per differentiable output), and the inputs afterwards."""
    ours, theirs = _twins(inputs)
    got, expected = _flat(ENTRY_POINTS[entry](fn)(*ours)), _flat(fn(*theirs))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        _close(g, e)
        assert getattr(g, "requires_grad", False) == getattr(e, "requires_grad", False)
    diff = [i for i, e in enumerate(expected) if isinstance(e, torch.Tensor) and e.requires_grad]
    assert diff, "a training case must have a differentiable output"
    assert any(type(got[i].grad_fn).__name__ == "TrainingFunctionBackward" for i in diff), "not compiled"
    gen = torch.Generator().manual_seed(seed)
    grad_outputs = [torch.randn(expected[i].shape, generator=gen, dtype=expected[i].dtype) for i in diff]
    wanted = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.requires_grad]
    g1 = torch.autograd.grad([got[i] for i in diff], [ours[i] for i in wanted], grad_outputs, allow_unused=True)
    g2 = torch.autograd.grad([expected[i] for i in diff], [theirs[i] for i in wanted], grad_outputs,
                             allow_unused=True)
    for a, b in zip(g1, g2):
        _close(a, b)
    for a, b in zip(ours, theirs):
        if isinstance(a, torch.Tensor):
            _close(a.detach(), b.detach())


def check_module_steps(entry, model, make_input, steps=2, loss=lambda y: y.float().pow(2).mean()):
    """`steps` forward + backward passes of a module compiled and eager: losses, every parameter's
    grad, every buffer (running stats), the input's grad."""
    twin = copy.deepcopy(model)
    compiled = ENTRY_POINTS[entry](model)
    for step in range(steps):
        x = make_input(step)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, y2 = compiled(x1), twin(x2)
        assert type(y1.grad_fn).__name__ == "TrainingFunctionBackward"
        l1, l2 = loss(y1), loss(y2)
        _close(l1, l2)
        l1.backward()
        l2.backward()
        _close(x1.grad, x2.grad)
        for (name, p1), p2 in zip(model.named_parameters(), twin.parameters()):
            _close(p1.grad, p2.grad)
        for b1, b2 in zip(model.buffers(), twin.buffers()):
            _close(b1, b2)


# -- modules -------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ENTRIES)
def test_mlp_with_layernorm_and_gelu(entry):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.GELU(),
                                torch.nn.Linear(16, 4))
    check_module_steps(entry, model, lambda step: torch.randn(5, 8))


@pytest.mark.parametrize("entry", ENTRIES)
def test_batchnorm_in_train_mode_updates_running_stats_once(entry):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    check_module_steps(entry, model, lambda step: torch.randn(2, 3, 6, 6) + step, steps=3)
    assert int(model[1].num_batches_tracked) == 3


# -- what the runtime handles --------------------------------------------------------------------
def several_outputs(x, w):
    y = x @ w
    return y.relu(), y.sum(), (y > 0).sum(), y.detach() * 2, y.argmax()


@pytest.mark.parametrize("entry", ENTRIES)
def test_several_outputs_some_not_differentiable(entry):
    torch.manual_seed(0)
    check_training(entry, several_outputs, [torch.randn(3, 4, requires_grad=True),
                                            torch.randn(4, 5, requires_grad=True)])


@pytest.mark.parametrize("entry", ENTRIES)
def test_grad_of_one_output_only(entry):
    x, w = torch.randn(3, 4, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    relu, total, *_ = ENTRY_POINTS[entry](several_outputs)(x, w)
    gx, gw = torch.autograd.grad(total, (x, w), retain_graph=True)  # relu's gradient is missing: zeros
    ex, ew = torch.autograd.grad(several_outputs(x, w)[1], (x, w))
    _close(gx, ex)
    _close(gw, ew)
    torch.autograd.backward([total], [torch.tensor(3.0)], retain_graph=True)
    _close(x.grad, 3 * ex)
    gx, gw = torch.autograd.grad(relu, (x, w), torch.ones(3, 5))  # the other output's alone
    ex, ew = torch.autograd.grad(several_outputs(x, w)[0], (x, w), torch.ones(3, 5))
    _close(gx, ex)
    _close(gw, ew)


def unused_inputs(x, w, z, n):
    return (x * 2).sum() + w.detach().sum() + n.sum()


@pytest.mark.parametrize("entry", ENTRIES)
def test_inputs_that_get_no_gradient(entry):
    x, w, z = (torch.randn(3, requires_grad=True) for _ in range(3))
    n = torch.arange(3)
    ENTRY_POINTS[entry](unused_inputs)(x, w, z, n).backward()
    assert w.grad is None and z.grad is None
    _close(x.grad, torch.full((3,), 2.0))
    check_training(entry, unused_inputs, [x, w, z, n])


def sin_mul(x, w):
    return (x.sin() * w).sum(0)


@pytest.mark.parametrize("entry", ENTRIES)
def test_retain_graph_backward_twice_and_freed_graph_raises(entry):
    x, w = torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True)
    out = ENTRY_POINTS[entry](sin_mul)(x, w)
    g = torch.randn(3)
    out.backward(g, retain_graph=True)
    out.backward(g)
    x2, w2 = x.detach().requires_grad_(), w.detach().requires_grad_()
    sin_mul(x2, w2).backward(2 * g)
    _close(x.grad, x2.grad)
    _close(w.grad, w2.grad)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward(g)


@pytest.mark.parametrize("entry", ENTRIES)
def test_gradient_layouts_autograd_hands_over(entry):
    """A sum's backward hands over an expanded (stride 0) gradient; a permute's a transposed one."""
    x = torch.randn(4, 3, requires_grad=True)
    f = ENTRY_POINTS[entry](lambda x: x.exp() * 2)
    f(x).sum().backward()
    _close(x.grad, x.detach().exp() * 2)
    x.grad = None
    f(x).t().contiguous().t().backward(torch.ones(3, 4).t())
    _close(x.grad, x.detach().exp() * 2)


def writes_a_buffer(x, buf):
    buf.add_(x.detach().mean())
    return (x * buf).sum(), buf * 1


@pytest.mark.parametrize("entry", ENTRIES)
def test_input_mutation_applied_once_in_forward(entry):
    check_training(entry, writes_a_buffer, [torch.randn(3, requires_grad=True), torch.zeros(3)])


def returns_inputs_and_views(w, x, buf):
    buf.add_(1)
    return x @ w, w.t(), w, x.view(-1), buf, w[1]


@pytest.mark.parametrize("entry", ENTRIES)
def test_outputs_that_are_or_view_inputs_keep_identity_and_gradients(entry):
    w, x, buf = torch.randn(4, 4, requires_grad=True), torch.randn(2, 4), torch.zeros(3)
    check_training(entry, returns_inputs_and_views, [w, x, buf])
    out = ENTRY_POINTS[entry](returns_inputs_and_views)(w, x, buf)
    assert out[2] is w and out[4] is buf  # the inputs themselves, as eager returns them
    assert out[1]._base is w and out[3]._base is x and out[5]._base is w  # views of them
    assert out[1].data_ptr() == w.data_ptr() and out[5].data_ptr() == w[1].data_ptr()


def grads_through_no_grad_region(x, w):
    with torch.no_grad():
        scale = w.abs().sum()
    return (x * scale * w).sum()


@pytest.mark.parametrize("entry", ENTRIES)
def test_no_grad_region_inside_the_graph(entry):
    check_training(entry, grads_through_no_grad_region, [torch.randn(3, requires_grad=True),
                                                         torch.randn(3, requires_grad=True)])


# -- random ops ----------------------------------------------------------------------------------
def dropped(x):
    return torch.nn.functional.dropout(x, 0.5, True) * 3


@pytest.mark.parametrize("entry", ENTRIES)
def test_dropout_backward_uses_the_forward_mask(entry):
    x = torch.randn(1000, requires_grad=True)
    f = ENTRY_POINTS[entry](dropped)
    y = f(x)
    y.sum().backward()
    kept = y.detach() != 0
    assert 300 < int(kept.sum()) < 700
    _close(x.grad, kept.float() * 6)
    _close(y.detach(), torch.where(kept, x.detach() * 6, 0.0))
    torch.manual_seed(7)
    a = f(x)
    torch.manual_seed(7)
    b = f(x)
    assert torch.equal(a, b) and not torch.equal(a, f(x))  # Kiln's stream follows torch's seed


# -- higher-order gradients, checkpoint, user Functions ------------------------------------------
def smooth(x, w):
    return (x.sin() * w * x).sum()


@pytest.mark.parametrize("entry", ENTRIES)
def test_create_graph_double_backward(entry):
    x, w = torch.randn(5, requires_grad=True), torch.randn(5, requires_grad=True)
    gx, gw = torch.autograd.grad(ENTRY_POINTS[entry](smooth)(x, w), (x, w), create_graph=True)
    ggx, ggw = torch.autograd.grad((gx * gw).sum(), (x, w))
    x2, w2 = x.detach().requires_grad_(), w.detach().requires_grad_()
    ex, ew = torch.autograd.grad(smooth(x2, w2), (x2, w2), create_graph=True)
    eex, eew = torch.autograd.grad((ex * ew).sum(), (x2, w2))
    for a, b in [(gx, ex), (gw, ew), (ggx, eex), (ggw, eew)]:
        _close(a.detach(), b.detach())


@pytest.mark.parametrize("entry", ENTRIES)
def test_create_graph_with_random_ops_raises_clearly(entry):
    x = torch.randn(10, requires_grad=True)
    y = ENTRY_POINTS[entry](dropped)(x).sum()
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(y, x, create_graph=True)


def block(x, w):
    return (x @ w).tanh().sin()


def test_create_graph_with_a_freed_input_raises_clearly():
    """Kiln keeps no input alive for a rerun: an intermediate passed in and dropped cannot be rerun."""
    from kiln.backend import compile_fx

    def exp_scaled(a, w):
        return (w.exp() * a.detach().sum()).sum()  # its backward reads a 0-dim sum and w, not a itself

    a, w = torch.randn(5), torch.randn(5, requires_grad=True)
    call = compile_fx(torch.fx.symbolic_trace(exp_scaled), [a, w])
    y = call(a * 1, w)  # its first input, a * 1, is freed once the call returns
    gw, = torch.autograd.grad(y, w, retain_graph=True)  # a first-order gradient needs no rerun
    _close(gw, (w.exp() * a.sum()).detach())
    with pytest.raises(RuntimeError, match="freed"):
        torch.autograd.grad(y, w, create_graph=True)


def checkpointed(x, w):
    # TorchDynamo traces the checkpointed region; Kiln's capture breaks the graph around it
    return torch.utils.checkpoint.checkpoint(block, x * 2, w, use_reentrant=False).sum()


@pytest.mark.parametrize("entry", ENTRIES)
def test_checkpoint(entry):
    check_training(entry, checkpointed, [torch.randn(3, 4, requires_grad=True), torch.randn(4, 4, requires_grad=True)])


class HalfDerivative(torch.autograd.Function):
    """A user Function whose backward is not the derivative of its forward: Kiln must use it."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


def with_user_function(x):
    return HalfDerivative.apply(x.sin()).sum()


def test_user_autograd_function_keeps_its_backward():
    check_training("torch.compile", with_user_function, [torch.randn(5, requires_grad=True)])


def test_user_autograd_function_under_kiln_compile_gives_eager_gradients(monkeypatch):
    """Kiln's capture does not trace into autograd.Function.apply yet: it runs it eagerly."""
    monkeypatch.setattr(config, "strict", False)
    x = torch.randn(5, requires_grad=True)
    with pytest.warns(Warning):
        kiln.compile(with_user_function)(x).backward()
    x2 = x.detach().requires_grad_()
    with_user_function(x2).backward()
    _close(x.grad, x2.grad)


# -- special values, 0-dim and empty tensors -----------------------------------------------------
SPECIAL = [0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan, 3.4e38, -3.4e38, 1e-45]

CASES = {
    "exp_mul": (lambda a, b: ((a * b).exp(), a + 1), lambda: [torch.tensor(2.0), torch.tensor(SPECIAL)]),
    "div_sqrt": (lambda a, b: (a / b).sqrt().sum(), lambda: [torch.tensor(SPECIAL), torch.tensor(SPECIAL[::-1])]),
    "softmax_log": (lambda a: a.log_softmax(-1) * a.tanh(), lambda: [torch.tensor(SPECIAL).reshape(2, 5)]),
    "zero_dim": (lambda a, b: (a * b + a.sigmoid(), b.abs()), lambda: [torch.tensor(-0.0), torch.tensor(math.inf)]),
    "zero_size": (lambda a, b: ((a @ b).relu(), (a.sum() + 1)), lambda: [torch.randn(3, 0), torch.randn(0, 2)]),
    "where_clamp": (lambda a: torch.where(a > 0, a.clamp(max=2.0), a * a).mean(), lambda: [torch.tensor(SPECIAL)]),
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_special_values(entry, name):
    fn, make = CASES[name]
    inputs = [x.requires_grad_() for x in make()]
    check_training(entry, fn, inputs)


@pytest.mark.parametrize("entry", ENTRIES)
def test_gradients_that_view_one_buffer(entry):
    """diff's input gradients are slices of one tensor: functionalize makes that tensor an extra
    'base' output, which reads the tangents and belongs to no forward output."""
    def fn(x, before, after):
        return torch.diff(x, n=1, dim=0, prepend=before, append=after)

    check_training(entry, fn, [torch.randn(5, 5, requires_grad=True), torch.randn(1, 5, requires_grad=True),
                               torch.randn(2, 5, requires_grad=True)])


@pytest.mark.parametrize("entry", ENTRIES)
def test_backward_that_depends_on_values_splits_the_graph_there(entry):
    """index_put with a boolean mask: its backward indexes by the mask (a shape from values), which
    no static graph can trace; the graph is split at that op (it runs eagerly, with its own
    backward) and the parts before and after it compile with their backward."""
    records.clear()

    def fn(x, mask, v):
        y = (x * 2).index_put((mask,), v.exp())
        return (y.sin() + 1).sum(0)

    mask = torch.tensor([True, False, True, False, False, True])
    check_training(entry, fn, [torch.randn(6, 3, requires_grad=True), mask, torch.randn(3, requires_grad=True)])
    split = [r for r in records.backend_records() if r.split]
    assert split and "index_put" in split[0].fallbacks[0].op, [str(r) for r in records.backend_records()]


@pytest.mark.parametrize("entry", ENTRIES)
def test_recurrent_cell_gates_written_in_place(entry):
    """gru_cell writes gates that unsafe_split cut from one matmul (views its schema does not say)."""
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, 3)
    weights = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def fn(x, h, w_ih, w_hh, b_ih, b_hh):
        return torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)

    check_training(entry, fn, [torch.randn(4, 5, requires_grad=True), torch.randn(4, 3, requires_grad=True), *weights])


# -- entry-point behaviour -----------------------------------------------------------------------
@pytest.mark.parametrize("entry", ENTRIES)
def test_grad_mode_without_inputs_requiring_grad_is_an_inference_compile(entry):
    out = ENTRY_POINTS[entry](lambda x: x.cos() + 1)(torch.randn(4))
    assert out.grad_fn is None and not out.requires_grad


def train_step(model, opt, x):
    loss = model(x).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss


@pytest.mark.parametrize("entry", ENTRIES)
def test_whole_training_step_in_one_compiled_function(entry, monkeypatch):
    """The forward compiles; `loss.backward()` and the optimizer break the graph or run eagerly (an
    optimizer graph Kiln refuses runs eagerly with a warning): the numbers are eager's."""
    monkeypatch.setattr(config, "strict", False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    twin = copy.deepcopy(model)
    opt, opt2 = torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(twin.parameters(), lr=0.1)
    step = ENTRY_POINTS[entry](train_step)
    for i in range(3):
        x = torch.randn(5, 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an optimizer graph Kiln refuses may warn
            got = step(model, opt, x)
        _close(got.detach(), train_step(twin, opt2, x).detach())
        for p1, p2 in zip(model.parameters(), twin.parameters()):
            _close(p1.detach(), p2.detach())
    assert any(r.backward_kernels is not None for r in kiln.records.backend_records()), "no training graph compiled"


@pytest.mark.parametrize("entry", ENTRIES)
def test_parameter_reached_as_graph_constant_gets_its_gradient(entry):
    from kiln.backend import compile_fx

    lin = torch.nn.Linear(3, 2)
    gm = torch.fx.symbolic_trace(lin)  # parameters inside a call_module: lifted to primals
    x = torch.randn(4, 3)
    compile_fx(gm, [x])(x).sum().backward()
    _close(lin.weight.grad, x.sum(0).expand(2, 3))
    _close(lin.bias.grad, torch.full((2,), 4.0))


def test_dump_writes_forward_and_backward_kernels_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "dump_dir", str(tmp_path))
    torch.compile(sin_mul, backend="kiln")(torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True))
    (graph_dir,) = list(tmp_path.iterdir())
    names = {p.name for p in graph_dir.iterdir()}
    assert {"1_joint_graph.py", "2_forward_graph.py", "2_backward_graph.py", "2_partition.txt",
            "forward_6_wrapper.py", "backward_6_wrapper.py"} <= names, names
    assert any(n.startswith("forward_5_") for n in names) and any(n.startswith("backward_5_") for n in names)


class Mixed(torch.nn.Module):
    """The ops whose backward ATen ops prims/decomp/backward.py decomposes, in one model."""

    def __init__(self):
        super().__init__()
        self.emb, self.ln, self.lin = torch.nn.Embedding(10, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 8)
        self.bn, self.conv = torch.nn.BatchNorm1d(8), torch.nn.Conv1d(8, 8, 3, padding=1)

    def forward(self, i, t):
        x = self.ln(self.emb(i))
        x = torch.nn.functional.gelu(self.lin(x)) + x.tanh() + x.sigmoid() + x.relu() + torch.nn.functional.silu(x)
        x = self.conv(self.bn(x.transpose(1, 2))).transpose(1, 2)
        x = x.softmax(-1) + x.log_softmax(-1)
        return (torch.nn.functional.cross_entropy(x.reshape(-1, 8), t)
                + torch.nn.functional.mse_loss(x, x.detach() * 0.5)
                + torch.nn.functional.gelu(x, approximate="tanh").mean())


@pytest.mark.parametrize("entry", ENTRIES)
def test_backward_ops_compile_to_kernels(entry):
    torch.manual_seed(0)
    model, twin = Mixed(), None
    twin = copy.deepcopy(model)
    i, t = torch.randint(0, 10, (2, 6)), torch.randint(0, 8, (12,))
    loss = ENTRY_POINTS[entry](model)(i, t)
    loss.backward()
    expected = twin(i, t)
    expected.backward()
    _close(loss, expected)
    for (name, p1), p2 in zip(model.named_parameters(), twin.parameters()):
        _close(p1.grad, p2.grad)
    for b1, b2 in zip(model.buffers(), twin.buffers()):
        _close(b1, b2)
    records = kiln.records.backend_records()
    assert any(r.backward_kernels for r in records)
    ops = {f.op for r in records for f in r.fallbacks}
    assert ops <= {"aten.convolution_backward.default", "aten.embedding_dense_backward.default"}, ops


def gelu_softmax(x, w):
    return torch.nn.functional.gelu(x @ w).softmax(-1).sum(0)


def test_triton_target():
    """Forward and backward as Triton kernels (Triton's interpreter on CPU tensors: small shapes)."""
    from kiln.backend import compile_fx

    x, w = torch.randn(3, 4, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    call = compile_fx(torch.fx.symbolic_trace(gelu_softmax), [x, w], target="triton")
    g = torch.randn(5)
    y = call(x, w)
    _close(y, gelu_softmax(x, w))
    for a, b in zip(torch.autograd.grad(y, (x, w), g), torch.autograd.grad(gelu_softmax(x, w), (x, w), g)):
        _close(a, b)
