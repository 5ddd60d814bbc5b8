"""Complex exp, log, sqrt, where, mean and constant fills compiled as real-pair kernels (prims/decomp/complex_math.py), not
op-level fallbacks (KILN_STRICT=ops raises on those), with eager's values: special parts (inf, nan,
-0.0, overflow, underflow) bit for bit where eager's are exact, else within rounding; both widths,
both targets (Triton in its interpreter), 0-d and empty tensors."""
import pytest
import torch

import kiln
from kiln import config

INF, NAN = float("inf"), float("nan")
VALUES = [complex(INF, 0), complex(-INF, 0), complex(INF, 1), complex(-INF, 1), complex(NAN, 0), complex(0, INF),
          complex(1, NAN), complex(-0.0, -0.0), complex(0, -0.0), complex(-1, -0.0), complex(-1, 0), complex(1, 1e-4),
          complex(3e38, 3e38), complex(1e-45, 0), complex(-INF, INF), complex(NAN, INF), complex(INF, INF),
          complex(INF, NAN), complex(-INF, NAN), complex(-INF, -INF), complex(100, 3), complex(89, 1.5707),
          complex(0.5, -2), complex(1.7e308, 1.7e308), complex(-3, 0.25), complex(0.6, 0.8), complex(-4, 0),
          complex(-4, -0.0), complex(NAN, -INF), complex(-INF, -2), complex(INF, -2), complex(-0.0, 2), complex(3, -4),
          complex(1e-40, 1e-40), complex(-1e-45, 1e-45), complex(-1, 1e-30)]
FNS = {
    "exp": lambda z: torch.exp(z) * 1,
    "log": lambda z: torch.log(z),
    "sqrt": lambda z: torch.sqrt(z),
    "where": lambda z: torch.where(z.real > 0, z, -z),
    "where_scalar": lambda z: torch.where(z.imag < 0, z, 2.0),
    "mean": lambda z: z.mean(),
    "constants": lambda z: (z + torch.full_like(z, 2 - 1j)) * torch.ones_like(z) + torch.zeros_like(z),
    "mean_dim": lambda z: z.reshape(-1, 2).mean(1, keepdim=True),
    "mean_empty": lambda z: z[:0].mean(),
    "exp_log_chain": lambda z: torch.exp(torch.log(z) * 0.5).sum(),
}


@pytest.fixture(autouse=True)
def _strict_ops(monkeypatch):
    kiln.reset()
    monkeypatch.setattr(config, "strict", "ops")  # an op-level fallback (or a whole-graph one) raises


def _same(got, expected, dtype):
    g, e = torch.view_as_real(got).double(), torch.view_as_real(expected).double()
    exact = ((g == e) & (torch.signbit(g) == torch.signbit(e))) | (g.isnan() & e.isnan())
    rtol = 4e-6 if dtype == torch.complex64 else 1e-12
    # log's real part near |z| = 1 is absolutely, not relatively, accurate (0.6+0.8j: 2.2e-17 vs 0.0)
    close = torch.isfinite(e) & ((g - e).abs() <= rtol * e.abs() + (1e-15 if dtype == torch.complex128 else 1e-300))
    bad = ~(exact | close)
    assert not bad.any(), f"at {bad.nonzero().tolist()}: {g[bad].tolist()} vs eager {e[bad].tolist()}"


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("name", FNS)
def test_complex_math_matches_eager(name, dtype, monkeypatch):
    monkeypatch.setattr(config, "target", "cpp")
    z = torch.tensor(VALUES, dtype=dtype)
    fn = FNS[name]
    got = kiln.compile_fx(torch.fx.symbolic_trace(fn), [z.clone()])(z.clone())
    _same(got, fn(z.clone()), dtype)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "where", "mean_dim"])
def test_complex_math_on_triton(name, monkeypatch):
    monkeypatch.setattr(config, "target", "triton")
    z = torch.tensor(VALUES, dtype=torch.complex64)
    fn = FNS[name]
    got = kiln.compile_fx(torch.fx.symbolic_trace(fn), [z.clone()])(z.clone())
    _same(got, fn(z.clone()), torch.complex64)


def test_zero_dim_and_broadcast_where():
    def fn(c, z, w):
        return torch.where(c, z, w).exp(), z.log(), w.mean()
    c = torch.tensor([[True], [False]])
    z = torch.tensor(complex(-0.0, INF), dtype=torch.complex64)
    w = torch.tensor([complex(1, -0.0), complex(NAN, 2)], dtype=torch.complex64)
    got = kiln.compile_fx(torch.fx.symbolic_trace(fn), [c, z, w])(c, z, w)
    for g, e in zip(got, fn(c, z, w)):
        assert g.shape == e.shape
        _same(g, e, torch.complex64)
