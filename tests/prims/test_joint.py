"""The joint graph (prims/joint.py): what trace_joint records, and the forward/backward split run as
references (call_with_effects) against eager autograd."""
import pytest
import torch
import torch.fx as fx

from kiln import prims
from kiln.prims import call_with_effects


def _placeholders(gm):
    return [n.name for n in gm.graph.nodes if n.op == "placeholder"]


def _run_split(fn, inputs, grad_outputs=None):
    """fn's joint graph split and run as references: (forward outputs, gradients by primal position,
    the inputs after the forward)."""
    joint = prims.trace_joint(fx.symbolic_trace(fn), inputs)
    graphs = prims.split_joint(prims.decompose(prims.functionalize(joint.gm)), joint)
    real = [x.detach().clone() for x in inputs] + [t.detach() for t in joint.lifted]
    flat = call_with_effects(graphs.forward, real)
    outs, saved = flat[:graphs.num_forward], flat[graphs.num_forward:]
    assert len(saved) == graphs.num_saved
    tangents = grad_outputs or [torch.ones_like(outs[i]) for i in joint.tangent_of]
    grads = call_with_effects(graphs.backward, [*saved, *tangents])
    by_primal = dict(zip(joint.grad_of, grads))
    return joint, outs, by_primal, real


def test_placeholders_are_primals_then_tangents_and_outputs_forward_then_grads():
    def fn(x, w, n):
        y = x @ w
        return y.relu(), (y > 0).sum(), y.detach(), n + 1
    x, w, n = torch.randn(2, 3, requires_grad=True), torch.randn(3, 4, requires_grad=True), torch.arange(3)
    joint = prims.trace_joint(fx.symbolic_trace(fn), [x, w, n])
    assert _placeholders(joint.gm) == ["x", "w", "n", "tangents_0"]
    assert joint.num_primals == 3 and joint.num_forward == 4
    assert joint.tangent_of == (0,)  # an integer, a detached value and an integer input's result: none
    assert joint.grad_of == (0, 1)
    assert joint.grad_outputs == [4, 5]
    # autograd's own derivative formulas were recorded: mm for the matmul's backward
    targets = [str(n.target) for n in joint.gm.graph.nodes if n.op == "call_function"]
    assert "aten.threshold_backward.default" in targets and targets.count("aten.mm.default") == 3


def test_split_matches_eager_autograd():
    def fn(x, w, b):
        return torch.nn.functional.layer_norm(x @ w + b, (4,)).tanh().sum(-1)
    inputs = [torch.randn(3, 5, requires_grad=True), torch.randn(5, 4, requires_grad=True),
              torch.randn(4, requires_grad=True)]
    g = torch.randn(3)
    joint, outs, grads, _ = _run_split(fn, inputs, [g])
    expected = fn(*inputs)
    torch.testing.assert_close(outs[0], expected)
    for i, e in enumerate(torch.autograd.grad(expected, inputs, g)):
        torch.testing.assert_close(grads[i], e)


def test_primal_with_no_gradient_gets_none():
    def fn(x, w, z):
        return (x * 2).sum() + w.detach().sum()
    inputs = [torch.randn(3, requires_grad=True) for _ in range(3)]
    joint, _, grads, _ = _run_split(fn, inputs)
    assert grads[1] is None and grads[2] is None
    torch.testing.assert_close(grads[0], torch.full((3,), 2.0))


def test_no_differentiable_output_gives_no_tangent_and_no_gradients():
    def fn(x):
        return (x > 0).sum(), x.detach() * 2
    joint, outs, grads, _ = _run_split(fn, [torch.randn(4, requires_grad=True)])
    assert joint.tangent_of == () and grads == {0: None}


def test_parameters_reached_as_attributes_become_primals():
    lin = torch.nn.Linear(3, 2)
    gm = fx.symbolic_trace(lin)  # a call_module: the parameters are the module's, not graph inputs
    x = torch.randn(4, 3)
    joint, outs, grads, _ = _run_split(lin, [x], [torch.ones(4, 2)])
    assert joint.lifted == (lin.weight, lin.bias)
    assert _placeholders(joint.gm) == ["input_1", "lifted_0", "lifted_1", "tangents_0"]
    assert joint.grad_of == (1, 2)  # x does not require grad
    torch.testing.assert_close(grads[1], x.sum(0).expand(2, 3))
    torch.testing.assert_close(grads[2], torch.full((2,), 4.0))
    assert gm is not None


def test_batchnorm_running_stats_are_forward_mutations():
    def fn(x, w, b, mean, var, count):
        count.add_(1)
        return torch.nn.functional.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5).sin()
    x = torch.randn(6, 3, requires_grad=True)
    w, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    buffers = [torch.zeros(3), torch.ones(3), torch.tensor(0)]
    joint, outs, grads, real = _run_split(fn, [x, w, b, *buffers], [torch.ones(6, 3)])
    mutations = prims.split_joint(prims.decompose(prims.functionalize(joint.gm)), joint).forward.meta[
        prims.MUTATIONS_KEY]
    assert sorted(m.input_index for m in mutations) == [3, 4, 5]
    eager_buffers = [t.clone() for t in buffers]
    expected = fn(x, w, b, *eager_buffers)
    torch.testing.assert_close(outs[0], expected)
    for got, e in zip(real[3:], eager_buffers):  # applied once, by the forward
        torch.testing.assert_close(got, e)
    for i, e in enumerate(torch.autograd.grad(expected, [x, w, b], torch.ones(6, 3))):
        torch.testing.assert_close(grads[i], e)


def test_dropout_mask_is_drawn_in_the_forward_only():
    def fn(x):
        return torch.nn.functional.dropout(x, 0.5, True) * 2
    joint = prims.trace_joint(fx.symbolic_trace(fn), [torch.randn(100, requires_grad=True)])
    graphs = prims.split_joint(prims.decompose(prims.functionalize(joint.gm)), joint)

    def random_prims(gm):
        return [n for n in gm.graph.nodes if isinstance(n.target, prims.Prim)
                and n.target.category is prims.Category.RANDOM]
    assert random_prims(graphs.forward) and not random_prims(graphs.backward)


def test_tensor_baked_into_an_argument_is_lifted():
    w = torch.randn(3, requires_grad=True)
    g = fx.Graph()
    g.output(g.call_function(torch.mul, (g.placeholder("x"), w)))
    joint = prims.trace_joint(fx.GraphModule(torch.nn.Module(), g), [torch.randn(3, requires_grad=True)])
    assert joint.lifted == (w,) and joint.grad_of == (0, 1)


_HIDDEN = torch.randn(3, requires_grad=True)


def _uses_hidden(x):
    return x * _HIDDEN  # a tensor the graph does not show: autograd meets the real tensor


def test_tensor_requiring_grad_met_past_autograd_is_refused():
    g = fx.Graph()
    g.output(g.call_function(_uses_hidden, (g.placeholder("x"),)))
    with pytest.raises(prims.UnsupportedGraph, match="gradient would be lost"):
        prims.trace_joint(fx.GraphModule(torch.nn.Module(), g), [torch.randn(3, requires_grad=True)])


def test_outputs_that_are_or_view_inputs_are_left_to_the_caller():
    def fn(w, x):
        return x @ w, w.t(), x, w[1]
    joint = prims.trace_joint(fx.symbolic_trace(fn), [torch.randn(3, 3, requires_grad=True), torch.randn(2, 3)])
    graphs = prims.split_joint(prims.decompose(prims.functionalize(joint.gm)), joint)
    assert graphs.input_aliases == (1, 2, 3)


def test_input_requiring_grad_written_in_place_is_refused():
    def fn(a):
        a.mul_(2)
        return a.sum()
    with pytest.raises(prims.UnsupportedGraph, match="written in place"):  # a non-leaf: eager allows the write
        prims.trace_joint(fx.symbolic_trace(fn), [torch.randn(3, requires_grad=True) * 1])
