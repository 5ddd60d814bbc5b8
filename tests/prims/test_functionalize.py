"""Functionalization: in-place ops, writes through views and out= ops become a pure ATen graph whose
meta says which inputs to copy back and which outputs alias what. Every program runs three ways and
must match eager on outputs, the inputs' final state and aliasing: the functional ATen graph run
eagerly (functionalization alone), the prims graph run on the prims' references, and (in
tests/codegen/test_effects_e2e.py) the compiled C++ and Triton code."""
import operator

import pytest
import torch

from kiln import prims
from effect_cases import CASES, REFUSED, batch_norm_inputs, batch_norm_training
from kiln_effects import check_effects, graph_of
from kiln_opinfo import INPLACE_CASES, inplace_sample, random_ops, run_samples
from kiln.prims import MUTATIONS_KEY, OUTPUTS_KEY

aten = torch.ops.aten


def _functional(fn, inputs):
    return prims.functionalize(prims.trace_aten(graph_of(fn, len(inputs)), inputs))


def _runner(gm):
    return lambda *inputs: prims.call_with_effects(gm, list(inputs))


def _calls(gm):
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is not operator.getitem]


@pytest.mark.parametrize("name", CASES)
def test_functional_aten_graph_matches_eager(name):
    fn, make = CASES[name]
    gm = _functional(fn, make())
    assert not any(n.target._schema.is_mutable for n in _calls(gm)), "an in-place op survived"
    before, after = make(), make()
    fn(*after)
    mutated = {i for i, (b, a) in enumerate(zip(before, after)) if not torch.equal(b, a)}
    # A copy-back exactly for the inputs eager changed (a write may leave values equal, never the reverse).
    recorded = {m.input_index for m in gm.meta[MUTATIONS_KEY]}
    assert mutated <= recorded, (mutated, recorded)
    check_effects(_runner(gm), fn, make)


@pytest.mark.parametrize("name", CASES)
def test_prims_reference_matches_eager(name):
    fn, make = CASES[name]
    gm = prims.lower(graph_of(fn, len(make())), make())
    assert all(isinstance(n.target, prims.Prim) for n in _calls(gm))
    check_effects(_runner(gm), fn, make)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_programs_say_why(name):
    fn, make, why = REFUSED[name]
    with pytest.raises(prims.UnsupportedGraph, match=why):
        prims.lower(graph_of(fn, len(make())), make())


def test_copy_backs_are_outputs_after_the_users_in_program_order():
    def fn(x, y, z):
        y.add_(1)
        x[0] = 2.0
        return z + 1

    gm = _functional(fn, [torch.randn(2, 3) for _ in range(3)])
    infos = gm.meta[OUTPUTS_KEY]
    assert [i.role for i in infos] == ["user", "mutation", "mutation"]
    assert [(m.input_index, m.output_index) for m in gm.meta[MUTATIONS_KEY]] == [(1, 1), (0, 2)]
    assert "input 1 (x1) <- output 1" in prims.describe(gm)


def test_write_through_a_view_scatters_back_and_later_views_replay():
    def fn(x):
        v = x[:, 1]
        x[0].mul_(2)  # select -> mul -> select_scatter into x
        return v + 1  # v is regenerated from x's new value

    gm = _functional(fn, [torch.randn(3, 4)])
    targets = [n.target for n in _calls(gm)]
    assert aten.select_scatter.default in targets and aten.mul.Tensor in targets
    add = next(n for n in _calls(gm) if n.target is aten.add.Tensor)
    regenerated = add.args[0]
    assert regenerated.target is aten.select.int and regenerated.args[0].target is aten.select_scatter.default


def test_outputs_aliasing_inputs_and_each_other_are_recorded():
    gm = _functional(lambda x: (x.t(), x[1:], x), [torch.randn(3, 4)])
    infos = gm.meta[OUTPUTS_KEY]
    assert (infos[0].view_of.base, infos[0].view_of.index, infos[0].view_of.strides) == ("input", 0, (1, 4))
    assert (infos[1].view_of.offset, infos[2].input_index, infos[2].view_of) == (4, 0, None)
    gm = _functional(lambda x: ((x * 2).t(), (x * 2)[0]), [torch.randn(3, 4)])  # two intermediates
    assert all(i.view_of is None for i in gm.meta[OUTPUTS_KEY])
    gm = _functional(CASES["views_of_hidden_intermediate"][0], [torch.randn(3, 4)])
    infos = gm.meta[OUTPUTS_KEY]
    assert [i.role for i in infos] == ["user"] * 3 + ["base"]
    assert all(i.view_of.base == "output" and i.view_of.index == 3 for i in infos[:3])


def test_mutation_free_graphs_keep_their_nodes():
    gm = prims.trace_aten(graph_of(lambda x: (x.t() * 2).sum(0), 1), [torch.randn(3, 4)])
    fg = prims.functionalize(gm)
    assert [n.target for n in _calls(fg)] == [n.target for n in _calls(gm)]
    assert prims.functionalize(fg) is fg and not fg.meta[MUTATIONS_KEY]


def test_write_to_a_constant_tensor_is_refused():
    count = torch.zeros(())  # a real tensor met while tracing becomes a get_attr constant

    def fn(x):
        count.add_(1)
        return x + count

    with pytest.raises(prims.WrittenConstants, match="constant tensor") as raised:
        prims.lower(graph_of(fn, 1), [torch.randn(3)])
    assert count.item() == 0  # tracing ran on fakes
    assert [t is count for t in raised.value.tensors] == [True]  # so the back end can make it an input


def test_batch_norm_in_training_updates_running_stats():
    # native_batch_norm writes its running stats without saying so in its schema
    gm = _functional(batch_norm_training, batch_norm_inputs())
    assert [(m.input_index, m.output_index) for m in gm.meta[MUTATIONS_KEY]] == [(1, 1), (2, 2)]
    assert aten._native_batch_norm_legit_functional.default in [n.target for n in _calls(gm)]
    check_effects(_runner(prims.decompose(gm)), batch_norm_training, batch_norm_inputs)


def test_outputs_viewing_a_constant_share_its_storage():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(3, 4), requires_grad=False)

        def forward(self, x):
            return self.w.t(), x + 1

    m = M()
    gm = prims.lower(torch.fx.symbolic_trace(m), [torch.randn(3)])
    out = prims.call_with_effects(gm, [torch.randn(3)])[0]
    assert out.untyped_storage().data_ptr() == m.w.untyped_storage().data_ptr() and out.stride() == (1, 4)


# -- OpInfo in-place variants: every sample, functionalized, against eager ------------------------
FAST = INPLACE_CASES[::7]  # a deterministic spread over the op list for the default run
FAST_SAMPLES = 2


def check_inplace_prims(op, sample):
    made, why_not = inplace_sample(op, sample)
    if made is None:
        return why_not
    fn, make = made
    try:
        traced = prims.trace_aten(graph_of(fn, len(make())), make())
        if random_ops(traced):
            return f"random ops {random_ops(traced)}"
        gm = prims.decompose(prims.functionalize(traced))
    except prims.UnsupportedGraph as e:
        return f"unsupported: {e}"
    check_effects(_runner(gm), fn, make)
    return None


@pytest.mark.parametrize("op, dtype", FAST)
def test_opinfo_inplace_fast(op, dtype):
    run_samples(op, dtype, FAST_SAMPLES, check_inplace_prims)


@pytest.mark.slow
@pytest.mark.parametrize("op, dtype", INPLACE_CASES)
def test_opinfo_inplace_full(op, dtype):
    run_samples(op, dtype, None, check_inplace_prims)
