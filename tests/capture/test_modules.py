"""nn.Module support: forward is compiled, parameters enter the graph as inputs."""
import pytest
import torch

from kiln import capture


class Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4))
        self.register_buffer("shift", torch.randn(4))
        self.factor = 2.0

    def forward(self, x):
        return x * self.weight * self.factor + self.shift


@pytest.mark.parametrize("make", [lambda: torch.nn.Linear(4, 3), Scale, torch.nn.ReLU, torch.nn.Tanh],
                         ids=["linear", "scale", "relu", "tanh"])
def test_module_matches_eager(make, counter, no_warnings):
    module = make()
    compiled = capture.compile(module, backend=counter, fullgraph=True)
    assert isinstance(compiled, torch.nn.Module) and compiled._orig_mod is module
    for rows in (2, 2, 5):
        x = torch.randn(rows, 4)
        torch.testing.assert_close(compiled(x), module(x))
    assert counter.count == 2
    placeholders = [node for node in counter.graphs[0].graph.nodes if node.op == "placeholder"]
    parameters = list(module.parameters()) + list(module.buffers())
    assert len(placeholders) == 1 + len(parameters)  # parameters are inputs, not constants
    assert not any(node.op == "get_attr" for node in counter.graphs[0].graph.nodes)


def test_parameter_update_is_seen_without_recompiling(counter):
    module = torch.nn.Linear(4, 2)
    compiled = capture.compile(module, backend=counter)
    x = torch.randn(3, 4)
    compiled(x)
    with torch.no_grad():
        module.weight.mul_(2)
    torch.testing.assert_close(compiled(x), module(x))
    assert counter.count == 1


def test_module_gradients_flow(counter):
    module = torch.nn.Linear(4, 2)
    compiled = capture.compile(module, backend=counter)
    compiled(torch.randn(3, 4)).sum().backward()
    assert module.weight.grad is not None


def test_submodule_with_hook_falls_back():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    model[0].register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(capture.Unsupported, match="_forward_hooks"):
        capture.compile(model, backend="eager", fullgraph=True)(torch.randn(2, 4))


def test_hook_added_later_recompiles_and_breaks_at_the_hooked_call(counter, no_warnings):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    compiled = capture.compile(model, backend=counter)
    x = torch.randn(2, 4)
    torch.testing.assert_close(compiled(x), model(x))
    model[0].register_forward_hook(lambda module, args, out: out * 2)
    torch.testing.assert_close(compiled(x), model(x))  # the hooked module runs eagerly, in the loop
    assert counter.count == 1
    (graph_break,) = capture.breaks.BREAKS
    assert "_forward_hooks" in graph_break.reason and "inside a loop" in graph_break.reason


def test_hooks_of_the_compiled_module_itself_run(counter, no_warnings):
    """kiln.compile(module) calls the module as eager does: its own forward pre-hooks, forward hooks
    and backward hooks run around the compiled forward (FSDP's all-gathers are such hooks)."""
    calls = []
    model = torch.nn.Linear(4, 3)
    model.register_forward_pre_hook(lambda module, args: (args[0] * 3,))
    model.register_forward_hook(lambda module, args, out: calls.append("forward") or out + 1)
    model.register_full_backward_hook(lambda module, grad_in, grad_out: calls.append("backward"))
    compiled = capture.compile(model, backend=counter)
    x = torch.randn(2, 4, requires_grad=True)
    got = compiled(x)
    torch.testing.assert_close(got, model(x))
    assert calls == ["forward", "forward"]
    got.sum().backward()
    assert calls[-1] == "backward" and "forward" not in model.__dict__  # the stand-in forward is gone
    compiled(x)
    assert counter.count == 1


def test_global_hooks_run_around_the_compiled_module(counter, no_warnings):
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, a, out: seen.append(type(m).__name__))
    try:
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
        torch.testing.assert_close(capture.compile(model, backend=counter)(torch.ones(1, 4)), model(torch.ones(1, 4)))
    finally:
        handle.remove()
    assert "Sequential" in seen


def test_compiled_module_state_dict_is_the_wrapped_modules():
    model = torch.nn.Linear(4, 3)
    compiled = capture.compile(model, backend="eager")
    assert list(compiled.state_dict()) == ["_orig_mod.weight", "_orig_mod.bias"]
    assert len(list(compiled.parameters())) == 2


def test_parameters_are_read_from_their_tables(counter):
    """Guards and inputs read module._parameters['weight'] (one dict read, not nn.Module.__getattr__);
    placeholders keep the attribute spelling's names; a replaced parameter is seen."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    compiled = capture.compile(model, backend=counter)
    x = torch.randn(3, 4)
    torch.testing.assert_close(compiled(x), model(x))
    (entry,) = [e for c in capture.cache._CACHES.values() for e in c.entries]
    assert "._parameters['weight']" in entry.guards.source_text
    names = [n.name for n in counter.graphs[-1].graph.nodes if n.op == "placeholder"]
    assert "l_self_modules_0_weight_" in names, names
    model[2].weight = torch.nn.Parameter(torch.randn(2, 4))
    torch.testing.assert_close(compiled(x), model(x))


def test_static_method_called_through_self(counter, no_warnings):
    class Bucketed(torch.nn.Module):
        @staticmethod
        def _bucket(x, n):
            return (x * n).floor().clamp(0, n - 1)

        def forward(self, x):
            return self._bucket(x, 8) + 1

    model = Bucketed()
    x = torch.rand(5)
    torch.testing.assert_close(capture.compile(model, backend=counter)(x), model(x))
    assert counter.count == 1
