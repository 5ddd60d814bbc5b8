"""trace_aten (torch level -> ATen level) and the decompose step on top of it."""
import operator

import pytest
import torch
import torch.fx as fx

from kiln import prims
from kiln.prims import META_KEY, OUTPUTS_KEY, PRIMS, TensorMeta
from kiln.prims.decomp.registry import DECOMPOSITIONS

aten = torch.ops.aten


def _calls(gm):
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is not operator.getitem]


def _trace(fn, *inputs):
    return prims.trace_aten(fx.symbolic_trace(fn), list(inputs))


def _fallbacks(gm):
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is PRIMS["fallback"]]


def test_one_node_per_aten_overload_with_metas():
    x, y = torch.randn(3, 4), torch.randn(4, 3)
    gm = _trace(lambda x, y: torch.sin(x) + y.t(), x, y)
    calls = _calls(gm)
    assert [n.target for n in calls] == [aten.sin.default, aten.t.default, aten.add.Tensor]
    # Metas are those of the eager results, strides included (t is a non-contiguous view).
    expected = [torch.sin(x), y.t(), torch.sin(x) + y.t()]
    assert [n.meta[META_KEY] for n in calls] == [TensorMeta.of(e) for e in expected]
    assert all(META_KEY in n.meta for n in gm.graph.nodes if n.op == "placeholder")


def test_multi_output_ops_get_getitem_nodes_with_metas():
    x = torch.randn(3, 4)
    gm = _trace(lambda x: torch.max(x, 1), x)
    (call,) = _calls(gm)
    assert call.target is aten.max.dim and isinstance(call.meta[META_KEY], tuple)
    items = [n for n in gm.graph.nodes if n.target is operator.getitem]
    values, indices = torch.max(x, 1)
    assert [n.meta[META_KEY] for n in items] == [TensorMeta.of(values), TensorMeta.of(indices)]


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)
        self.scale = torch.tensor([2.0, -1.0])  # a plain tensor attribute, neither parameter nor buffer

    def forward(self, x):
        return self.lin(x) * self.scale


def test_parameters_and_constant_attributes_become_get_attr_constants():
    torch.manual_seed(0)
    mod, x = _Linear(), torch.randn(3, 4)
    gm = fx.symbolic_trace(mod)
    assert any(n.op == "call_module" for n in gm.graph.nodes)  # the parameters sit behind call_module
    aten_gm = prims.trace_aten(gm, [x])
    consts = [n for n in aten_gm.graph.nodes if n.op == "get_attr"]
    held = [getattr(aten_gm, n.target) for n in consts]
    # The real tensors themselves (not copies) are held, with their metas on the nodes.
    for t in (mod.lin.weight, mod.lin.bias, mod.scale):
        assert any(h is t or (h.data_ptr() == t.data_ptr() and h.shape == t.shape) for h in held), t.shape
    assert all(n.meta[META_KEY] == TensorMeta.of(getattr(aten_gm, n.target)) for n in consts)
    pg = prims.decompose(aten_gm)
    assert not _fallbacks(pg)
    torch.testing.assert_close(pg(x)[0], mod(x))


def test_in_place_ops_are_recorded_as_traced_with_identities():
    def fn(x):
        y = x * 2
        y.relu_()
        return x.add_(y)

    gm = _trace(fn, torch.randn(3))
    calls = _calls(gm)
    assert [n.target for n in calls] == [aten.mul.Tensor, aten.relu_.default, aten.add_.Tensor]
    key = prims.aten_trace.IDENTITY_KEY
    x = next(n for n in gm.graph.nodes if n.op == "placeholder").meta[key]
    mul, relu_, add_ = (n.meta[key] for n in calls)
    assert relu_ == mul and add_ == x and mul.storage != x.storage  # an in-place result *is* its input
    assert gm.meta[OUTPUTS_KEY][0].input_index == 0


def test_views_share_their_base_storage_with_offsets():
    gm = _trace(lambda x: x[1:].t(), torch.randn(3, 4))
    ident = [n.meta[prims.aten_trace.IDENTITY_KEY] for n in gm.graph.nodes if n.op != "output"]
    assert len({i.storage for i in ident}) == 1 and len({i.tensor for i in ident}) == 3
    assert ident[-1].offset == 4


def test_returning_an_input_records_its_index():
    x, y = torch.randn(3), torch.randn(3)
    infos = _trace(lambda x, y: (x + y, y), x, y).meta[OUTPUTS_KEY]
    assert [i.input_index for i in infos] == [None, 1]
    assert infos[1].meta == TensorMeta.of(y)


def test_returning_a_tensor_twice_records_same_as():
    x = torch.randn(3)

    def fn(x):
        y = x + 1
        return y, x * 2, y

    gm = _trace(fn, x)
    infos = gm.meta[OUTPUTS_KEY]
    assert [i.same_as for i in infos] == [None, None, 0]
    assert [i.input_index for i in infos] == [None, None, None]
    outs = prims.decompose(gm)(x)
    torch.testing.assert_close(outs[2], x + 1)


def test_non_tensor_inputs_are_unsupported():
    gm = fx.symbolic_trace(lambda x, n: x * n)
    with pytest.raises(prims.UnsupportedGraph, match="only tensor inputs"):
        prims.trace_aten(gm, [torch.randn(3), 2])


def test_softmax_decomposes_without_fallbacks():
    x = torch.randn(4, 5)
    aten_gm = _trace(lambda x: torch.softmax(x, -1), x)
    assert aten._softmax.default in DECOMPOSITIONS
    pg = prims.decompose(aten_gm)
    names = {n.target.name for n in prims.prim_nodes(pg)}
    assert not _fallbacks(pg) and {"amax", "exp", "sum", "div"} <= names
    torch.testing.assert_close(pg(x)[0], torch.softmax(x, -1))


def test_decomposition_table_holds_overloads_only():
    assert DECOMPOSITIONS and all(isinstance(op, torch._ops.OpOverload) for op in DECOMPOSITIONS)
    assert all(callable(fn) for fn in DECOMPOSITIONS.values())


def test_op_without_decomposition_becomes_a_fallback_that_runs():
    x = torch.randn(3, 5)
    op = aten.fake_quantize_per_tensor_affine_cachemask.default
    assert op not in DECOMPOSITIONS
    fq = lambda x: torch.fake_quantize_per_tensor_affine(x * 2, 0.1, 0, 0, 255)  # noqa: E731
    pg = prims.decompose(_trace(fq, x))
    (fb,) = _fallbacks(pg)
    assert fb.args[0] is op
    assert fb.meta[META_KEY] == tuple(TensorMeta.of(t) for t in op(x, 0.1, 0, 0, 255))  # from the ATen trace
    torch.testing.assert_close(pg(x)[0], fq(x))


@pytest.mark.parametrize("fn", [lambda x: x[x > 0], lambda x: x.narrow(0, torch.tensor(1), 2)], ids=["mask", "narrow"])
def test_data_dependent_ops_raise_unsupported(fn):
    with pytest.raises(prims.UnsupportedGraph):
        _trace(fn, torch.randn(4))


def test_foreach_ops_trace_element_by_element():
    """An in-place foreach op writes a list of tensors: traced as one in-place op per tensor
    (prims/foreach.py), which functionalization turns into input writes."""
    def step(a, b, c, d):
        torch._foreach_addcmul_([a, b], [c, d], [c, d], value=0.5)
        return torch._foreach_norm([a, b])

    inputs = [torch.randn(3, 4), torch.randn(()), torch.randn(3, 4), torch.randn(())]
    gm = _trace(step, *inputs)
    targets = [n.target for n in _calls(gm)]
    assert not any("_foreach" in str(t) for t in targets), targets
    assert targets.count(aten.addcmul.default) == 2 and targets.count(aten.copy_.default) == 2
    functional = prims.functionalize(gm)
    assert [m.input_index for m in functional.meta[prims.MUTATIONS_KEY]] == [0, 1]
