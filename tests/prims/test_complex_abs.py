"""abs of a complex tensor is its real magnitude. kiln.abs keeps its input's dtype, so the
decomposition used to give a complex64 result where eager gives float32 (decompose raised "a Kiln
bug" for stft(...).abs()). Complex abs is now hypot of the (real, imag) pair (decomp/complex.py),
a real result; real abs stays the abs prim."""
import torch
import torch.fx as fx

from kiln import prims
from kiln.backend import compile_fx
from kiln.prims import PRIMS


def _fallbacks(pg):
    return [str(n.args[0]) for n in pg.graph.nodes if n.target is PRIMS["fallback"]]


def test_abs_of_complex_is_real_magnitude():
    z = torch.randn(3, 4, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    fn = lambda z: z.abs() * 2  # noqa: E731
    pg = prims.lower(fx.symbolic_trace(fn), [z])
    assert _fallbacks(pg) == []
    assert any(n.target is PRIMS["hypot"] for n in pg.graph.nodes)
    (got,) = prims.call_with_effects(pg, [z])
    torch.testing.assert_close(got, fn(z))
    got = compile_fx(fx.symbolic_trace(fn), [z], target="cpp")(z)
    torch.testing.assert_close(got[0] if isinstance(got, (tuple, list)) else got, fn(z))


def test_abs_of_real_is_a_prim():
    x = torch.randn(3, 4)
    pg = prims.lower(fx.symbolic_trace(lambda x: x.abs()), [x])
    assert _fallbacks(pg) == []
    assert any(n.target is PRIMS["abs"] for n in pg.graph.nodes)
