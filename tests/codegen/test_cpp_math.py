"""Kiln's vectorizable float math (exp, log, expm1, log1p, tanh, erf) against torch, over a wide
sweep plus the special values (0, -0, subnormals, +-inf, NaN, overflow and underflow edges)."""
import pytest
import torch
import torch.fx as fx

from kiln.backend import compile_graph

SPECIALS = [0.0, -0.0, 1e-30, -1e-30, 1e-40, float("inf"), -float("inf"), float("nan"), 88.7, 88.73, -87.5,
            -103.9, -104.5, 1e-8, -1e-8, 0.5, -0.5, 0.49999, 3.9, -3.9, 20.0, -20.0, 1e30]


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.tensor(SPECIALS), torch.randn(20000, generator=g) * 3, torch.randn(5000, generator=g) * 30,
                      torch.rand(5000, generator=g) * 1e-3, torch.exp(torch.randn(5000, generator=g) * 10)])


@pytest.mark.parametrize("fn,kernel_call", [(torch.exp, "kiln_exp("), (torch.log, "kiln_log("),
                                            (torch.expm1, "kiln_expm1("), (torch.log1p, "kiln_log1p("),
                                            (torch.tanh, "kiln_tanh("), (torch.erf, "kiln_erf("),
                                            (torch.sigmoid, "kiln_exp(")], ids=lambda f: getattr(f, "__name__", ""))
def test_matches_torch(fn, kernel_call):
    x = _inputs()
    if fn is torch.log1p:
        x = x.clamp(min=-0.9999)
    compiled = compile_graph(fx.symbolic_trace(lambda x: (fn(x),)), [x], target="cpp")
    kernel = compiled.backend.source.split('extern "C"', 1)[1]
    assert kernel_call in kernel  # the vectorizable version, not libm's
    torch.testing.assert_close(compiled.call(x)[0], fn(x), equal_nan=True)


@pytest.mark.parametrize("fn", [torch.sin, torch.cos, torch.tan], ids=lambda f: f.__name__)
def test_trig_fast_path_and_libm_rerun(fn):
    """sin/cos/tan use Kiln's polynomial within |x| <= 2^18 (every float exponent there, both signs,
    points near multiples of pi/2, NaN); an input outside that domain reruns the kernel with libm."""
    g = torch.Generator().manual_seed(1)
    near = torch.arange(-40, 41, dtype=torch.float64) * (torch.pi / 2)
    x = torch.cat([torch.tensor([0.0, -0.0, 1e-40, 1e-30, float("nan"), 262144.0, -262143.9]),
                   near.float(), torch.nextafter(near.float(), torch.tensor(1e9)),
                   torch.randn(20000, generator=g) * 3,
                   torch.ldexp(torch.rand(20000, generator=g) + 0.5, torch.randint(-30, 18, (20000,), generator=g))
                   * torch.where(torch.rand(20000, generator=g) < 0.5, -1.0, 1.0)])
    compiled = compile_graph(fx.symbolic_trace(lambda x: (fn(x),)), [x], target="cpp")
    assert f"kiln_{fn.__name__}<KILN_EXACT>(" in compiled.backend.source and "kiln_big |=" in compiled.backend.source
    torch.testing.assert_close(compiled.call(x)[0], fn(x), equal_nan=True)
    y = x.clone()
    y[100:103] = torch.tensor([1e30, float("inf"), 3e5])  # outside the fast domain: the libm instantiation runs
    torch.testing.assert_close(compiled.call(y)[0], fn(y), equal_nan=True)


def test_division_in_row_kernels_is_exact():
    """Division inside a reduction kernel (by a constant, by the row's reduction) rounds as IEEE
    division, as eager: floor(x / 3) must not lose an integer to a reciprocal's rounding."""
    g = torch.Generator().manual_seed(2)
    x = torch.arange(1, 256 * 1024 + 1, dtype=torch.float32).reshape(256, 1024) * (torch.rand(256, 1, generator=g) + 0.5)
    x = torch.cat([x.floor(), x], 0)

    def f(x):
        m = x.amax(-1, keepdim=True)
        return torch.floor(x / 3.0) + m * 0, torch.div(x, m, rounding_mode="floor"), x / m

    compiled = compile_graph(fx.symbolic_trace(f), [x], target="cpp")
    assert len(compiled.kernels) == 1  # the divisions run inside the row kernel
    for got, expected in zip(compiled.call(x), f(x)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_streamed_stores_match_eager(monkeypatch):
    """Memory-bound pointwise kernels write big float32 outputs in chunks with streaming stores:
    several outputs, head loops, broadcast operands; non-float outputs and transcendental kernels
    keep plain stores; a target that is not 64-byte aligned takes the plain copy."""
    from kiln.codegen.cpp import render

    monkeypatch.setattr(render, "STREAM_MIN_BYTES", 1 << 16)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(48, 4096, generator=g), torch.randn(4096, generator=g)

    def f(x, y):
        return (x * 2.0 + y).relu(), x - y, (x > y), (x.t() * 3.0)

    compiled = compile_graph(fx.symbolic_trace(f), [x, y], target="cpp")
    assert compiled.backend.source.count("kiln_stream64(&") == 3  # not the bool output
    for got, expected in zip(compiled.call(x, y), f(x, y)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    exp = compile_graph(fx.symbolic_trace(lambda x: (x.exp() + 1.0,)), [x], target="cpp")
    assert "kiln_stream64(&" not in exp.backend.source  # compute-bound: plain stores

    one = compile_graph(fx.symbolic_trace(lambda x, y: (x * 2.0 + y,)), [x, y], target="cpp")
    kernel = next(v for k, v in one.backend.globals().items() if k.startswith("kernel"))
    out = torch.zeros(48 * 4096 + 1)
    kernel(x.data_ptr(), y.data_ptr(), out[1:].data_ptr())  # 4 bytes past an aligned start
    torch.testing.assert_close(out[1:].view(48, 4096), x * 2.0 + y, rtol=0, atol=0)
    assert out[0] == 0


def test_large_memory_bound_kernels_stream_by_default():
    x = torch.randn(1 << 22)  # 16 MB out
    compiled = compile_graph(fx.symbolic_trace(lambda x: (x * 0.5 + 1.0,)), [x], target="cpp")
    assert "kiln_stream64(&" in compiled.backend.source
    torch.testing.assert_close(compiled.call(x)[0], x * 0.5 + 1.0, rtol=0, atol=0)
