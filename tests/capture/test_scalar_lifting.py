"""Scalar lifting in capture: a float argument that changed value becomes a graph input in
TorchDynamo's form (a 0-dim float64 tensor placeholder read by `.item()`), instead of a constant
guarded by value; `dynamic=True` lifts from the first call, `dynamic=False` never does."""
import logging

import pytest
import torch

import kiln


@pytest.fixture
def recompiles(caplog):
    caplog.set_level(logging.DEBUG, logger="kiln.recompiles")
    return caplog


def scaled(x, s):
    return torch.relu(x) * s + s * 2


def _lifted(gm):
    """The `.item()` nodes of float64 0-dim placeholders in a graph."""
    return [node for node in gm.graph.nodes if node.op == "call_method" and node.target == "item"
            and node.args[0].op == "placeholder" and node.args[0].meta["example_value"].dtype == torch.float64]


def test_graph_format_is_dynamos(counter):
    compiled = kiln.compile(scaled, backend=counter)
    x = torch.randn(3, 4)
    for s in [0.5, 1.5, -2.0, 0.0]:
        torch.testing.assert_close(compiled(x, s), scaled(x, s))
    assert counter.count == 2
    assert not _lifted(counter.graphs[0])
    (item,) = _lifted(counter.graphs[1])
    assert item.args[0].target == "L_s_" and isinstance(item.meta["example_value"], torch.SymFloat)
    example = counter.example_inputs[1][[n.op for n in counter.graphs[1].graph.nodes].index("placeholder") + 1]
    assert example.dtype == torch.float64 and example.dim() == 0 and example.item() == 1.5


def test_dynamic_true_lifts_from_the_first_call(counter):
    compiled = kiln.compile(scaled, backend=counter, dynamic=True)
    x = torch.randn(3, 4)
    for s in [0.5, 1.5, -2.0]:
        torch.testing.assert_close(compiled(x, s), scaled(x, s))
    assert counter.count == 1 and len(_lifted(counter.graphs[0])) == 1


def test_dynamic_false_guards_each_value(counter):
    compiled = kiln.compile(scaled, backend=counter, dynamic=False)
    x = torch.randn(3, 4)
    for s in [0.5, 1.5, -2.0]:
        torch.testing.assert_close(compiled(x, s), scaled(x, s))
    assert counter.count == 3 and not any(_lifted(gm) for gm in counter.graphs)


def test_automatic_dynamic_float_is_logged(counter, recompiles):
    compiled = kiln.compile(scaled, backend=counter)
    x = torch.randn(3)
    compiled(x, 0.5)
    compiled(x, 1.5)
    assert "automatic dynamic: float s changed 0.5 -> 1.5" in recompiles.text


def branchy(x, s):
    if s > 1.0:
        return x * s
    return x - s


def test_a_branch_on_a_lifted_float_is_a_guard(counter, recompiles):
    compiled = kiln.compile(branchy, backend=counter)
    x = torch.randn(4)
    for s in [2.0, 3.0, 4.0, 0.5, 0.25, 5.0, 1.0]:
        torch.testing.assert_close(compiled(x, s), branchy(x, s))
    assert counter.count == 3  # 2.0 as a constant; lifted with s > 1; lifted with s <= 1
    assert "L['s'] > 1.0" in recompiles.text


def test_float_items_of_a_list_argument(counter):
    def fn(x, scales):
        return x * scales[0] + scales[1]
    compiled = kiln.compile(fn, backend=counter)
    x = torch.randn(4)
    for scales in ([0.5, 1.0], [1.5, 1.0], [2.5, -1.0], [3.5, 7.0]):
        torch.testing.assert_close(compiled(x, scales), fn(x, scales))
    assert counter.count == 3  # item 0 lifted after the second call, item 1 after the third


def test_module_float_attributes_stay_constants(counter):
    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = 0.5

        def forward(self, x):
            return x * self.s

    module = Scale()
    compiled = kiln.compile(module, backend=counter)
    x = torch.randn(4)
    for s in [0.5, 1.5, 2.5]:
        module.s = s
        torch.testing.assert_close(compiled(x), x * s)
    assert not any(_lifted(gm) for gm in counter.graphs)  # (as in TorchDynamo: attributes are guarded)


def test_inf_and_nan_stay_constants(counter):
    compiled = kiln.compile(scaled, backend=counter)
    x = torch.randn(4)
    for s in [float("inf"), float("nan"), -float("inf")]:
        torch.testing.assert_close(compiled(x, s), scaled(x, s), equal_nan=True)
    assert not any(_lifted(gm) for gm in counter.graphs)
