"""Tensors a graph holds as constants and writes in place (TorchDynamo's optimizer state under a
compiled `optimizer.step()`; buffers of an fx-traced module) become graph inputs
(kiln/constants.py): the writes land in those tensors, as eager's do, under KILN_STRICT=1."""
import operator

import pytest
import torch
import torch.fx as fx

import kiln
from kiln import records


pytestmark = pytest.mark.usefixtures("strict")


def _accumulating_graph() -> fx.GraphModule:
    """An fx graph writing two tensors it holds (get_attr), one through a view, and reading them back."""
    root = torch.nn.Module()
    root.register_buffer("total", torch.zeros(3))
    root.register_buffer("count", torch.zeros((), dtype=torch.int64))
    g = fx.Graph()
    x = g.placeholder("x")
    total, count = g.get_attr("total"), g.get_attr("count")
    g.call_method("add_", (total, g.call_method("sum", (x, 0))))
    g.call_method("add_", (count, 1))
    g.call_method("mul_", (g.call_function(operator.getitem, (total, slice(1, None))), 0.5))
    g.output((g.call_function(operator.truediv, (total, count)), g.call_function(operator.mul, (x, 2))))
    return fx.GraphModule(root, g)


def test_constant_writes_of_an_fx_graph_land_in_the_constants():
    graph, eager = _accumulating_graph(), _accumulating_graph()
    compiled = kiln.compile_fx(graph, [torch.randn(4, 3)])
    for value in (1.0, -2.5, float("inf")):
        x = torch.full((4, 3), value)
        torch.testing.assert_close(compiled(x), eager(x))
        torch.testing.assert_close(graph.total, eager.total)
        assert graph.count.item() == eager.count.item()
    assert all(r.compiled for r in records.backend_records())


def _compare_and_resync(model, reference, opt, ref_opt):
    """Parameters and optimizer state equal eager's after one step from equal starting points; then
    the reference starts the next step from the compiled values (one rounding apart after a step,
    a momentum buffer's cancellation would otherwise grow that over steps)."""
    with torch.no_grad():
        for p, q in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(p, q)
            q.copy_(p)
            assert opt.state[p].keys() == ref_opt.state[q].keys()
            for key, value in opt.state[p].items():
                expected = ref_opt.state[q][key]
                torch.testing.assert_close(value, expected)
                if isinstance(expected, torch.Tensor):
                    expected.copy_(value)


def _model():
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.LayerNorm(10), torch.nn.GELU(), torch.nn.Linear(10, 2))


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda p: torch.optim.Adam(p, lr=1e-2, foreach=False),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, foreach=True),
    lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.5, foreach=False),
], ids=["sgd_nesterov", "adam", "adamw_foreach", "rmsprop"])
def test_compiled_optimizer_step_matches_eager(make_optimizer):
    torch.manual_seed(0)
    model, reference = _model(), _model()
    reference.load_state_dict(model.state_dict())
    opt, ref_opt = make_optimizer(model.parameters()), make_optimizer(reference.parameters())

    @torch.compile(backend="kiln")
    def step():
        opt.step()

    for _ in range(4):
        x = torch.randn(5, 6)
        model(x).square().mean().backward()
        reference(x).square().mean().backward()
        step()
        ref_opt.step()
        opt.zero_grad()
        ref_opt.zero_grad()
        _compare_and_resync(model, reference, opt, ref_opt)
    assert records.backend_records() and all(r.compiled for r in records.backend_records())
