"""decompose(renderable=...): an ATen op that needs a dtype outside the target's table becomes a
kiln.fallback node with its reason, whether the dtype is an argument's, a result's, or only one its
decomposition computes in (then the prims it emitted are rolled back)."""
import torch

from kiln import prims
from kiln.prims import PRIMS, Category

F32_ONLY = frozenset({torch.float32, torch.int64, torch.bool})


def _prims_graph(fn, *args, renderable=None):
    gm = torch.fx.symbolic_trace(fn)
    aten_gm = prims.functionalize(prims.trace_aten(gm, list(args)))
    return prims.decompose(aten_gm, renderable=renderable, target="T")


def _fallbacks(pg):
    return [(str(n.args[0]), prims.fallback_reason(n)) for n in prims.fallback_nodes(pg)]


def _computes_only_in(pg, dtypes):
    for n in prims.prim_nodes(pg):
        if n.target.category in (Category.EXTERN, Category.FALLBACK):
            continue
        meta = n.meta[prims.META_KEY]
        assert meta.dtype in dtypes, n.format_node()


def test_complex_argument_or_result_falls_back_with_its_reason():
    """Complex ops with no real-pair decomposition (decomp/complex.py: sqrt, exp) fall back; abs
    of their result is computed on its pair."""
    def fn(z, x):
        return z.sqrt().exp().abs() + torch.sin(x)
    z, x = torch.complex(torch.randn(3), torch.randn(3)), torch.randn(3)
    pg = _prims_graph(fn, z, x, renderable=F32_ONLY)
    assert _fallbacks(pg) == [("aten.sqrt.default", "dtype complex64 has no T rendering"),
                              ("aten.exp.default", "dtype complex64 has no T rendering")]
    assert any(n.target is PRIMS["hypot"] for n in prims.prim_nodes(pg))
    assert any(n.target is PRIMS["sin"] for n in prims.prim_nodes(pg))  # the real part stays prims
    _computes_only_in(pg, F32_ONLY)
    torch.testing.assert_close(prims.call_with_effects(pg, [z, x]), [fn(z, x)])


def test_an_intermediate_dtype_rolls_the_decomposition_back():
    """var of float32 accumulates in float64 on CPU (its decomposition): without float64 it runs as is."""
    def fn(x):
        return torch.var(x * 2, dim=0) + 1
    x = torch.randn(5, 3)
    assert not _fallbacks(_prims_graph(fn, x))
    pg = _prims_graph(fn, x, renderable=F32_ONLY)
    assert [op for op, _ in _fallbacks(pg)] == ["aten.var.correction"]
    assert _fallbacks(pg)[0][1].startswith("dtype float64 has no T rendering (kiln.")
    _computes_only_in(pg, F32_ONLY)
    torch.testing.assert_close(prims.call_with_effects(pg, [x]), [fn(x)])


def test_no_table_means_every_dtype():
    def fn(x):
        return x.to(torch.float64) * 2
    assert not _fallbacks(_prims_graph(fn, torch.randn(3)))
    assert [op for op, _ in _fallbacks(_prims_graph(fn, torch.randn(3), renderable=F32_ONLY))] == ["aten._to_copy.default", "aten.mul.Tensor"]
