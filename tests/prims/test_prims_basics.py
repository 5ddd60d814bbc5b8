"""The prims entry point on the thin path: torch level -> ATen -> prims, runnable with references."""
import operator

import pytest
import torch
import torch.fx as fx

from kiln import prims
from kiln.prims import PRIMS, Prim, PrimMetaError, TensorMeta


def thin_path(x, y):
    a = torch.sin(x) * 2.0 + y
    b = a.relu() - x / 3
    return torch.softmax(b, dim=-1), b.sum(dim=1, keepdim=True), a.mean()


def _lower(fn, *inputs):
    return prims.lower(fx.symbolic_trace(fn), list(inputs))


def test_thin_path_lowers_to_prims_only_and_runs():
    x, y = torch.randn(4, 6), torch.randn(4, 6)
    gm = _lower(thin_path, x, y)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets and all(isinstance(t, Prim) or t is operator.getitem for t in targets)
    assert PRIMS["fallback"] not in targets
    for got, expected in zip(gm(x, y), thin_path(x, y)):
        torch.testing.assert_close(got, expected)


def test_aten_graph_has_one_node_per_overload_with_metas():
    aten = prims.trace_aten(fx.symbolic_trace(lambda x: torch.softmax(x * 2, -1)), [torch.randn(3, 5)])
    calls = [n for n in aten.graph.nodes if n.op == "call_function"]
    assert [str(n.target) for n in calls] == ["aten.mul.Tensor", "aten._softmax.default"]
    assert all(n.meta["kiln_meta"] == TensorMeta.contiguous((3, 5), torch.float32, "cpu") for n in calls)


def test_unsupported_ops_become_explicit_fallbacks_that_run():
    x = torch.randn(3, 5)
    fq = lambda x: torch.fake_quantize_per_tensor_affine(x, 0.1, 0, 0, 255) + 1  # noqa: E731
    gm = _lower(fq, x)
    fallbacks = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is PRIMS["fallback"]]
    assert len(fallbacks) == 1 and "fake_quantize" in str(fallbacks[0].args[0])
    torch.testing.assert_close(gm(x)[0], fq(x))


def test_in_place_ops_are_functionalized_and_metadata_mutations_refused():
    gm = _lower(lambda x: x.add_(1), torch.randn(3))
    assert all(isinstance(n.target, Prim) for n in gm.graph.nodes if n.op == "call_function")
    assert [(m.input_index, m.output_index) for m in gm.meta[prims.MUTATIONS_KEY]] == [(0, 1)]
    with pytest.raises(prims.UnsupportedGraph, match="storage beyond"):  # growing: new memory is uninitialised
        _lower(lambda x: x.resize_(8), torch.randn(2, 3))


def test_type_promotion_is_explicit():
    gm = _lower(lambda i, f: i + f, torch.arange(6).reshape(2, 3), torch.randn(3))
    names = [n.target.name for n in gm.graph.nodes if isinstance(n.target, Prim)]
    assert "convert_element_type" in names and "broadcast_in_dim" in names


def test_prims_print_as_kiln_names():
    assert repr(PRIMS["add"]) == "kiln.add"
    assert all(p.doc and p.category for p in PRIMS.values())


def test_meta_rules_reject_bad_input():
    with pytest.raises(PrimMetaError, match="shapes must match"):
        PRIMS["add"].meta(TensorMeta.contiguous((2,), torch.float32, "cpu"),
                          TensorMeta.contiguous((3,), torch.float32, "cpu"))
    with pytest.raises(PrimMetaError, match="dtype"):
        PRIMS["exp"].meta(TensorMeta.contiguous((2,), torch.int64, "cpu"))
