"""Complex values as (real, imag) pairs in the prims graph (prims/decomp/complex.py): a complex
op decomposes to real prims on float32/float64 tensors with a trailing dim of 2; the complex
tensors themselves appear only at the boundary (graph inputs viewed as pairs, outputs viewed as
complex); what the pairs do not cover falls back with its reason, as before."""
import torch

from kiln import prims
from kiln.prims import PRIMS, Category

F32_ONLY = frozenset({torch.float32, torch.int64, torch.bool})
F32_F64 = F32_ONLY | {torch.float64}
BOUNDARY = {"view_as_complex", "view_as_real", "resolve_conj"}


def _prims_graph(fn, *args, renderable=None):
    aten_gm = prims.functionalize(prims.trace_aten(torch.fx.symbolic_trace(fn), list(args)))
    return prims.decompose(aten_gm, renderable=renderable, target="T")


def _fallbacks(pg):
    return [(str(n.args[0]), prims.fallback_reason(n)) for n in prims.fallback_nodes(pg)]


def _complex_prims(pg):
    """Prims other than the boundary views that read or give a complex tensor."""
    out = []
    for n in prims.prim_nodes(pg):
        if n.target.name in BOUNDARY:
            continue
        metas = [n.meta[prims.META_KEY]] + [a.meta[prims.META_KEY] for a in n.all_input_nodes]
        if any(getattr(m, "dtype", torch.float32).is_complex for m in metas if not isinstance(m, tuple)):
            out.append(n.format_node())
    return out


def _names(pg):
    return [n.target.name for n in prims.prim_nodes(pg)]


def _z(*shape, dtype=torch.complex64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def test_a_chain_of_complex_ops_is_real_prims_between_boundary_views():
    def fn(z, w, x):
        return (z * w + x).conj() * 2j - w.abs()
    z, w, x = _z(3, 4), _z(3, 4, seed=1), torch.randn(4)
    pg = _prims_graph(fn, z, w, x, renderable=F32_ONLY)
    assert _fallbacks(pg) == [] and _complex_prims(pg) == []
    names = _names(pg)
    assert names.count("view_as_real") == 2 and names.count("view_as_complex") == 1  # inputs in, the output out
    torch.testing.assert_close(prims.call_with_effects(pg, [z, w, x]), [fn(z, w, x)])


def test_view_as_complex_then_view_as_real_is_the_pair_itself():
    def fn(x):
        return torch.view_as_real(torch.view_as_complex(x) * 1) + 1
    x = torch.randn(3, 2)
    pg = _prims_graph(fn, x, renderable=F32_ONLY)
    assert not BOUNDARY & set(_names(pg)) and _fallbacks(pg) == []
    torch.testing.assert_close(prims.call_with_effects(pg, [x]), [fn(x)])


def test_conjugate_bit_inputs_are_resolved_at_the_boundary():
    def fn(z):
        return z * 2
    z = _z(2, 3).conj()
    pg = _prims_graph(fn, z, renderable=F32_ONLY)
    assert "resolve_conj" in _names(pg)
    torch.testing.assert_close(prims.call_with_effects(pg, [z]), [fn(z)])


def test_complex128_without_float64_falls_back_with_its_reason():
    """The pairs of complex128 are float64: a target without it rolls the prims back."""
    def fn(z):
        return z * 2 + 1
    z = _z(3, dtype=torch.complex128)
    assert _fallbacks(_prims_graph(fn, z, renderable=F32_F64)) == []
    pg = _prims_graph(fn, z, renderable=F32_ONLY)
    assert _fallbacks(pg) == [("aten.mul.Tensor", "dtype complex128 has no T rendering"),
                              ("aten.add.Tensor", "dtype complex128 has no T rendering")]
    assert all(n.target.category in (Category.EXTERN, Category.FALLBACK) for n in prims.prim_nodes(pg))
    torch.testing.assert_close(prims.call_with_effects(pg, [z]), [fn(z)])


def test_complex32_is_not_a_pair_dtype():
    def fn(z):
        return z.to(torch.complex32)
    z = _z(3)
    pg = _prims_graph(fn, z, renderable=F32_ONLY)
    assert [op for op, _ in _fallbacks(pg)] == ["aten._to_copy.default"]


def test_ops_left_to_eager_keep_their_reason():
    def fn(z, w):
        return (z.sqrt() * w).exp().abs()
    z, w = _z(3), _z(3, seed=1)
    pg = _prims_graph(fn, z, w, renderable=F32_ONLY)
    assert _fallbacks(pg) == [("aten.sqrt.default", "dtype complex64 has no T rendering"),
                              ("aten.exp.default", "dtype complex64 has no T rendering")]
    assert "hypot" in _names(pg)  # abs of the fallback's result is computed on its pair
    torch.testing.assert_close(prims.call_with_effects(pg, [z, w]), [fn(z, w)])


def test_reference_run_without_a_type_table_uses_the_pairs_too():
    def fn(z):
        return torch.polar(z.abs(), z.angle()) - z
    z = _z(5)
    pg = _prims_graph(fn, z)
    assert _fallbacks(pg) == [] and _complex_prims(pg) == []
    torch.testing.assert_close(prims.call_with_effects(pg, [z]), [fn(z)])


def test_outputs_keep_eagers_dense_strides():
    def fn(z):
        return z * 2
    z = _z(4, 3).t()
    pg = _prims_graph(fn, z, renderable=F32_ONLY)
    (out,) = [n for n in pg.graph.nodes if n.op == "output"][0].args[0]
    assert out.meta[prims.META_KEY].strides == (1, 3)
    (got,) = prims.call_with_effects(pg, [z])
    assert got.stride() == fn(z).stride()
