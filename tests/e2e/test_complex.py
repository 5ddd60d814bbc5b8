"""Complex numbers compiled: complex pointwise ops, views and sums decompose to real prims on
(real, imag) pairs (prims/decomp/complex.py), so they run in generated kernels and fuse with the
real code around them; KILN_STRICT=ops proves no op-level fallback. Values equal eager's,
special values (inf, nan, -0.0 in either part) included, for complex64 and complex128, on both
entry points and both targets (Triton in its interpreter, small shapes)."""
import itertools
import warnings

import pytest
import torch

from kiln import config, records
from kiln.fallback import KilnCompileWarning
from kiln_entries import ENTRY_POINTS

NAN, INF = float("nan"), float("inf")
PARTS = [0.0, -0.0, 1.5, -2.0, INF, -INF, NAN, 3e38]


def _entry_points():
    return ENTRY_POINTS


pytestmark = pytest.mark.usefixtures("fresh")


@pytest.fixture(params=["cpp", "triton"])
def target(request, monkeypatch):
    monkeypatch.setattr(config, "target", request.param)
    return request.param


@pytest.fixture
def strict_ops(monkeypatch):
    monkeypatch.setattr(config, "strict", "ops")  # an op-level fallback raises, so does an eager graph


def special(dtype=torch.complex64, n=None):
    """Every pair of special parts: inf, nan, -0.0 in the real part, the imaginary part, or both."""
    z = torch.tensor([complex(a, b) for a, b in itertools.product(PARTS, PARTS)], dtype=dtype)
    return z if n is None else z[:n]


def rand(*shape, dtype=torch.complex64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def run(entry, fn, *args):
    """fn compiled and eager on clones of args: outputs and mutated inputs equal eager's.
    (Only Kiln's warnings are errors: Triton's interpreter warns on numpy's inf/nan arithmetic.)"""
    mine, theirs = [a.clone() if isinstance(a, torch.Tensor) else a for a in args], list(args)
    theirs = [a.clone() if isinstance(a, torch.Tensor) else a for a in theirs]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        got = _entry_points()[entry](fn)(*mine)
    expected = fn(*theirs)
    torch.testing.assert_close(as_parts(got), as_parts(expected), equal_nan=True)
    torch.testing.assert_close(as_parts(mine), as_parts(theirs), equal_nan=True)
    return got


def as_parts(x):
    """Complex tensors compared part by part (same tolerances): assert_close's complex difference
    is NaN when a part is inf on both sides and the other part differs by a rounding."""
    if isinstance(x, (list, tuple)):
        return [as_parts(v) for v in x]
    if isinstance(x, torch.Tensor) and x.is_complex():
        return torch.view_as_real(x.resolve_conj())
    return x


def compiled_records():
    done = records.backend_records()
    assert done and all(r.compiled for r in done), [str(r) for r in done]
    return done


def outer(dtype):
    """Every special pair against every other one: z (64, 1) and w (1, 64) broadcast to 64 x 64."""
    return special(dtype)[:, None], special(dtype)[None, :]


def real_of(dtype):
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}[dtype]


def reals(dtype):
    """PARTS, each repeated: as long as special(dtype), so they pair with every complex value."""
    return torch.tensor([p for p in PARTS for _ in PARTS], dtype=real_of(dtype))


# name -> (fn, dtype -> args). Each runs under KILN_STRICT=ops: no op-level fallback.
CASES = {
    "add": (lambda a, b: a + b, outer),
    "sub": (lambda a, b: a - b, outer),
    "mul": (lambda a, b: a * b, outer),
    "add_alpha": (lambda a, b: torch.add(a, b, alpha=2), outer),
    "sub_complex_alpha": (lambda a, b: torch.sub(a, b, alpha=1j), outer),
    "div": (lambda a, b: a / b, outer),
    "div_by_real_int_and_scalars": (lambda a, x, i: (a / x, x / a, a / i, a / 2, a / 1j, a / (3 - 4j), 2 / a,
                                                     a / 0.0, a / 0j, a / NAN, a / INF, 1 / a),
                                    lambda d: (special(d), reals(d), torch.arange(64) - 32)),
    "reciprocal": (lambda a: torch.reciprocal(a), lambda d: (special(d),)),
    "eq_ne": (lambda a, b: (a == b, a != b), outer),
    "eq_ne_real_and_scalars": (lambda a, x: (a == x, x != a, a == 1.5, a != 1j, a == (1.5 - 2j)),
                               lambda d: (special(d), reals(d))),
    "neg": (lambda a: -a, lambda d: (special(d),)),
    "conj_view_then_mul": (lambda a: a.conj() * 1.5, lambda d: (special(d),)),
    "conj_physical": (lambda a: torch.conj_physical(a), lambda d: (special(d),)),
    "resolve_conj": (lambda a: torch.resolve_conj(a.conj()) + 1, lambda d: (special(d),)),
    "abs": (lambda a: a.abs(), lambda d: (special(d),)),
    "angle": (lambda a: a.angle(), lambda d: (special(d),)),
    "real_imag": (lambda a: (a.real * 1, a.imag + 0, a.real, a.imag), lambda d: (special(d),)),
    "view_as_real": (lambda a: (torch.view_as_real(a * 2), torch.view_as_real(a) + 1), lambda d: (special(d),)),
    "view_as_complex": (lambda r: torch.view_as_complex(r * 2) * 1j,
                        lambda d: (torch.view_as_real(special(d)).clone(),)),
    "polar": (lambda r, t: torch.polar(r, t), lambda d: (reals(d).abs(), reals(d).flip(0))),
    "complex": (lambda re, im: torch.complex(re, im) * 2, lambda d: (reals(d), reals(d).flip(0))),
    "complex_times_real_tensor": (lambda a, x: (a * x, x * a, a + x, x - a), lambda d: (special(d), reals(d))),
    "real_tensor_and_complex_scalars": (lambda x: (x * 1j, x + (2 - 1j), 1j - x), lambda d: (reals(d),)),
    "complex_and_python_scalars": (lambda a: (a * 2.5, a + 1, a - 3j, a * (1 - 2j), 2 - a), lambda d: (special(d),)),
    "int_and_bool_tensors": (lambda a, i, b: (a * i, a + b), lambda d: (special(d), torch.arange(64) - 32,
                                                                        torch.arange(64) % 3 == 0)),
    "complex64_with_float64_and_complex128": (
        lambda a, x, c: (a * x, a + c, (a.to(torch.complex128) * c).real.float()),
        lambda d: (special(torch.complex64), reals(torch.complex128), special(torch.complex128).flip(0))),
    "dtype_conversions": (lambda a, x: (a.to(torch.complex128) + 1, a.to(torch.complex64) * 1, x.to(a.dtype) * 2,
                                        a.real.to(torch.float16) + 1),
                          lambda d: (special(d), reals(d))),
    "sum": (lambda a: (a.reshape(8, 8).sum(0), a.reshape(8, 8).sum(-1, keepdim=True), a.sum(), a[:0].sum()),
            lambda d: (rand(64, dtype=d),)),
    "zero_dim": (lambda a, b, x: (a * b + a.abs(), a * x, torch.view_as_real(a - b), a.angle()),
                 lambda d: (torch.tensor(1 + 2j, dtype=d), torch.tensor(complex(INF, -0.0), dtype=d),
                            torch.tensor(3.0, dtype=real_of(d)))),
    "zero_size": (lambda a, b: (a * b, a.abs(), torch.view_as_real(a + 1), a.sum(0)),
                  lambda d: (rand(0, 3, dtype=d), rand(0, 3, dtype=d, seed=1))),
    "transposed_inputs_and_outputs": (lambda a, b: (a * b, a.t() + 1, (a * 2).t()),
                                      lambda d: (rand(4, 3, dtype=d).t(), rand(3, 4, dtype=d, seed=1))),
    "conj_bit_inputs": (lambda a, b: (a * b, a.abs(), torch.view_as_real(a + 0)),
                        lambda d: (rand(3, 4, dtype=d).conj(), rand(3, 4, dtype=d, seed=1).conj())),
    "strided_inputs": (lambda a: a * 2 + a.conj(), lambda d: (rand(4, 6, dtype=d)[:, ::2],)),
    "movement": (lambda a: (a[:, 1:3] * 2, a.permute(1, 0)[0] + 1, a.unsqueeze(0).expand(2, 4, 3).flip(0) - 1,
                            torch.cat([a, a * 2], -1), a.reshape(12).view(3, 4) * 1, a.transpose(-1, -2)[-1] * 1j,
                            a.squeeze() * 1, a[None, :, None].squeeze(0) * 2, a[torch.tensor([2, 0])] * 1),
                 lambda d: (rand(4, 3, dtype=d),)),
    "cat_promotes": (lambda a, x: torch.cat([a, x, a.to(torch.complex128)]), lambda d: (rand(3, dtype=d), reals(d)[:5])),
    "written_in_place": (lambda a, b: (a.mul_(b), b.add_(1j), b.sub_(a, alpha=2)),
                         lambda d: (special(d), special(d).flip(0))),
}

# The default run: each case on C++ in both complex dtypes (one per entry point), and on Triton's
# interpreter in complex64; KILN_FULL=1 runs every combination.
DEFAULT = [("cpp", torch.complex64, "kiln.compile"), ("cpp", torch.complex128, "torch.compile"),
           ("triton", torch.complex64, "kiln.compile")]
COMBOS = [pytest.param(t, d, e, id=f"{t}-{str(d)[6:]}-{e}",
                       marks=() if (t, d, e) in DEFAULT else pytest.mark.slow)
          for t in ("cpp", "triton") for d in (torch.complex64, torch.complex128) for e in _entry_points()]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("target_name, dtype, entry", COMBOS)
def test_complex_op_compiles_to_kernels(name, target_name, dtype, entry, strict_ops, monkeypatch):
    monkeypatch.setattr(config, "target", target_name)
    fn, make = CASES[name]
    run(entry, fn, *make(dtype))
    for r in compiled_records():
        assert r.fallback_count == 0 and r.fallback_ops == ()


# -- rotary embeddings fuse ----------------------------------------------------------------------
def apply_rotary_emb(xq, xk, freqs):
    """Llama's rotary embedding (freqs_cis from polar, reshape_for_broadcast, type_as)."""
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)
    freqs_cis = freqs_cis.view(1, xq_.shape[1], 1, xq_.shape[-1])
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def apply_rotary_emb_llama4(xq, freqs_cis):
    """Llama 4's: freqs_cis a precomputed complex input."""
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    return torch.view_as_real(xq_ * freqs_cis[:, None, :]).flatten(3).type_as(xq)


def _freqs(seq, dim):
    return torch.outer(torch.arange(float(seq)), 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))


@pytest.mark.parametrize("entry", _entry_points())
def test_rotary_embedding_is_one_or_two_kernels(entry, target, strict_ops):
    g = torch.Generator().manual_seed(0)
    xq, xk = torch.randn(2, 5, 3, 8, generator=g), torch.randn(2, 5, 3, 8, generator=g)
    freqs = _freqs(5, 8)
    freqs[0, 0], freqs[1, 1] = INF, NAN  # polar(1, inf) is nan+nanj, as in eager
    run(entry, apply_rotary_emb, xq, xk, freqs)
    (r,) = compiled_records()
    # freqs_cis (read by both products) is one kernel, both rotations the other
    assert r.fallback_count == 0 and r.kernels <= 2, str(r)


@pytest.mark.parametrize("entry", _entry_points())
def test_llama4_rotary_embedding_is_one_kernel(entry, target, strict_ops):
    g = torch.Generator().manual_seed(0)
    xq = torch.randn(2, 5, 3, 8, generator=g).to(torch.bfloat16)
    freqs_cis = torch.polar(torch.ones(5, 4), _freqs(5, 8))
    run(entry, apply_rotary_emb_llama4, xq, freqs_cis)
    (r,) = compiled_records()
    assert r.fallback_count == 0 and r.kernels == 1, str(r)


def test_rotary_schedule_has_no_library_call_but_the_input_view():
    """The only library calls are the complex input's free views (resolve_conj, view_as_real)."""
    from kiln.backend import compile_graph
    from kiln.inductor.ir.schedule import FusedKernel, Run

    def rope(xq, freqs_cis):
        xq_ = torch.view_as_complex(xq.reshape(2, 5, 3, 4, 2))
        return torch.view_as_real(xq_ * freqs_cis).reshape(2, 5, 3, 8) * 2

    xq, freqs_cis = torch.randn(2, 5, 3, 8), torch.polar(torch.ones(5, 1, 4), _freqs(5, 8)[:, None])
    cg = compile_graph(torch.fx.symbolic_trace(rope), [xq, freqs_cis], target="cpp")
    steps = [s.item for s in cg.steps if isinstance(s, Run)]
    assert sum(isinstance(s, FusedKernel) for s in steps) == 1
    assert sorted(str(s.op) for s in steps if not isinstance(s, FusedKernel)) == \
        ["aten.resolve_conj.default", "aten.view_as_real.default"]
    got = cg.call(xq, freqs_cis)
    torch.testing.assert_close(got[0] if isinstance(got, (list, tuple)) else got, rope(xq, freqs_cis))


# -- what stays a library call --------------------------------------------------------------------
@pytest.mark.parametrize("entry", _entry_points())
def test_complex_ops_without_a_pair_decomposition_fall_back_with_a_reason(entry, target, monkeypatch):
    """cos and sin (C99's special cases) stay op-level fallbacks, reported with their reason; the
    ops around them compile."""
    monkeypatch.setattr(config, "strict", True)
    run(entry, lambda a, b: ((a * 2).cos() / b).sin() + 1, special(), special().flip(0))
    (r,) = compiled_records()
    assert sorted(r.fallback_ops) == ["aten.cos.default", "aten.sin.default"], str(r)
    reason = "dtype complex64 has no C++ rendering" if target == "cpp" else "dtype complex64 has no Triton rendering"
    assert all(f.reason == reason for f in r.fallbacks), str(r)


@pytest.mark.parametrize("entry", _entry_points())
def test_a_sliced_complex_view_reaches_a_library_call_without_a_complex_copy(entry, monkeypatch):
    """A library call's complex argument that is a slice of a pair (OpInfo's fft.fft2 with `s`): the
    pair is already laid out as the call's dense copy would be, so no complex kernel is needed (one
    was, and refused the graph)."""
    monkeypatch.setattr(config, "strict", True)
    x = torch.randn(5, 6, 7, dtype=torch.complex64)
    run(entry, lambda x: torch.fft.fft2(x, s=(3, 10), dim=(1, 2), norm="ortho"), x)
    run(entry, lambda x: torch.nn.functional.pad(x[:, :3], (0, 3)) * 2, x)


@pytest.mark.parametrize("entry", _entry_points())
def test_fft_is_a_library_call_and_its_spectrum_math_compiles(entry, strict_ops):
    def spectrum(x):
        f = torch.fft.rfft(x)
        return f.abs(), f.angle(), torch.fft.irfft(f * f.conj())
    run(entry, spectrum, torch.tensor(PARTS * 2).reshape(2, 8))
    (r,) = compiled_records()
    assert r.fallback_count == 0
