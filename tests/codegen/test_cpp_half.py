"""float16 and bfloat16 on the C++ target: stored as 16-bit buffers, computed in float, rounded to
nearest even where eager rounds (codegen/cpp/ops.py HALF_FLOATS; docs/codegen.md).

- the conversions themselves, bit for bit against torch's: every float16/bfloat16 value widened,
  and floats around every rounding boundary (ties, overflow to inf, subnormals, NaN) narrowed;
- an OpInfo sweep in 16-bit floats, many ops to one graph (one C++ build per group; the per-op
  sweep over every sample is test_opinfo_codegen.py's slow test_opinfo_16_bit_full);
- casts between every dtype and the 16-bit ones, constants, where/comparisons/indexing;
- a float16 transformer-like block through both entry points with KILN_STRICT=1 (no fallback).
Special values in 16-bit floats are swept by test_special_values.py.
"""
import ctypes
import subprocess

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

import kiln
from kiln import config
from kiln.backend import compile_graph
from kiln.codegen.cpp.prelude import PRELUDE
from kiln_opinfo import ALL_CASES, batched_samples, combined_graph, unspecified_outputs
from special_values import describe_mismatches, special_tensor
from half_compare import DECOMPOSITION_DIFFS_16_BIT, HALF_FLOATS, HALF_TOL, assert_close_16_bit, float64_run, half_cases

CONVERSIONS = PRELUDE + r"""
extern "C" void widen_h(const uint16_t* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_h2f(x[i]); }
extern "C" void widen_bf(const uint16_t* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_bf2f(x[i]); }
extern "C" void narrow_h(const float* x, uint16_t* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_f2h(x[i]); }
extern "C" void narrow_bf(const float* x, uint16_t* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_f2bf(x[i]); }
extern "C" void round_h(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_round_h(x[i]); }
extern "C" void round_bf(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_round_bf(x[i]); }
"""
# (widen, narrow, round) per dtype; vectorized (-O3) and scalar (-O0)
FUNCTIONS = {torch.float16: ("widen_h", "narrow_h", "round_h"), torch.bfloat16: ("widen_bf", "narrow_bf", "round_bf")}


@pytest.fixture(scope="module", params=["-O3", "-O0"])
def conversions(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "conv.cpp"
    path.write_text(CONVERSIONS)
    lib = path.with_suffix(".so")
    subprocess.run([config.cxx, request.param, "-march=native", "-fopenmp", "-ffp-contract=off", "-shared", "-fPIC",
                    str(path), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


def _call(fn, x, out):
    fn(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()), ctypes.c_int64(x.numel()))
    return out


def _boundary_floats(dtype):
    """Floats around every rounding boundary of `dtype`: each 16-bit value, the midpoints to its
    neighbours, and one float ulp either side of both; the floats' own subnormals; inf and NaNs."""
    bits = torch.arange(-2**15, 2**15, dtype=torch.int32).to(torch.int16).view(dtype).float()
    finite = bits[bits.isfinite()].unique()
    mids = (finite[1:].double() + finite[:-1].double()) / 2  # exact in float: one bit more than the 16-bit value
    extra = torch.tensor([65504.0, 65519.99, 65520.0, 65536.0, 3.3895e38, 3.4028235e38, float("inf"), -float("inf"),
                          float("nan"), 1e-45, -1e-45, 5.9604645e-8, 2.98e-8, 2.9802322e-8, 1.1754942e-38])
    values = torch.cat([finite, mids.float(), extra, -extra])
    ulp = torch.cat([torch.nextafter(values, torch.tensor(float("inf"))), torch.nextafter(values, torch.tensor(-float("inf")))])
    nans = torch.tensor([0x7FC00000, 0x7F800001, 0xFFC00001 - 2**32, 0x7FFFFFFF], dtype=torch.int32).view(torch.float32)
    return torch.cat([values, ulp, nans])


@pytest.mark.parametrize("dtype", HALF_FLOATS, ids=str)
def test_conversions_match_torch_bit_for_bit(conversions, dtype):
    """Every 16-bit value widens to torch's float; floats around every boundary narrow to torch's
    bits (round to nearest even, overflow to inf, subnormals exact), NaN to a NaN, and round (to a
    float holding the 16-bit value) as torch's narrowing and widening."""
    widen, narrow, round_ = (getattr(conversions, f) for f in FUNCTIONS[dtype])
    every = torch.arange(-2**15, 2**15, dtype=torch.int32).to(torch.int16)
    got = _call(widen, every, torch.empty(every.shape, dtype=torch.float32))
    expected = every.view(dtype).float()
    nan = expected.isnan()
    assert torch.equal(got.isnan(), nan) and torch.equal(got[~nan].view(torch.int32), expected[~nan].view(torch.int32))

    x = _boundary_floats(dtype)
    got = _call(narrow, x, torch.empty(x.shape, dtype=torch.int16))
    expected = x.to(dtype).view(torch.int16)
    nan = x.isnan()
    assert got.view(dtype)[nan].isnan().all()
    wrong = (got != expected) & ~nan
    assert not wrong.any(), [(x[i].item(), hex(got[i].item() & 0xFFFF), hex(expected[i].item() & 0xFFFF))
                             for i in wrong.nonzero().flatten()[:5].tolist()]

    got = _call(round_, x, torch.empty(x.shape, dtype=torch.float32))  # to the nearest 16-bit value, as a float
    expected = x.to(dtype).float()
    assert got[nan].isnan().all()
    wrong = (got.view(torch.int32) != expected.view(torch.int32)) & ~nan
    assert not wrong.any(), [(x[i].item(), got[i].item(), expected[i].item()) for i in wrong.nonzero().flatten()[:5].tolist()]


# -- OpInfo sweep: the float32 cases in 16-bit floats, many ops to one C++ build ------------------------

GROUP = 40  # ops per graph


def _groups():
    """Every op of the OpInfo sweeps in float16 and bfloat16, GROUP ops per graph (the ones whose
    decompositions are known to differ from eager are xfails of the per-op sweep). Groups of the
    same ops in float16 and bfloat16 differ when an op supports only one of them."""
    out = []
    for dtype in HALF_FLOATS:
        ops = [p.values[0] for p in half_cases(ALL_CASES)
               if p.values[1] == dtype and (p.values[0].name, dtype) not in DECOMPOSITION_DIFFS_16_BIT]
        for k in range(0, len(ops), GROUP):
            group = ops[k:k + GROUP]
            # CI: every other group, float16 and bfloat16 alternating, so each op runs in one of them
            fast = (k // GROUP) % 2 == HALF_FLOATS.index(dtype)
            out.append(pytest.param(group, dtype, id=f"{group[0].name}..{group[-1].name}-{str(dtype)[6:]}",
                                    marks=() if fast else pytest.mark.slow))
    return out


@pytest.mark.parametrize("ops, dtype", _groups())
def test_opinfo_16_bit_batched(ops, dtype):
    items = batched_samples(ops, dtype, per_op=1)
    gm, inputs, call, spans, items = combined_graph(items)
    compiled = compile_graph(gm, [x.clone() for x in inputs], target="cpp")  # every group compiles whole
    torch.manual_seed(0)
    expected = call(*[x.clone() for x in inputs])
    torch.manual_seed(0)
    got = compiled.call(*[x.clone() for x in inputs])
    unspecified = unspecified_outputs(compiled.aten_gm)
    reference = float64_run(call, inputs, dtype)
    for label, start, n in spans:
        try:
            assert_close_16_bit(got[start:start + n], expected[start:start + n], dtype,
                                lambda s=start, n=n: reference()[s:s + n],
                                {i - start for i in unspecified if start <= i < start + n})
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}") from e


# -- casts, constants, where / comparisons / indexing: exact, as eager -----------------------------------

ALL_DTYPES = [torch.float32, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
              torch.float16, torch.bfloat16]


def _cast_inputs(dtype):
    """Special values of `dtype`, plus values whose cast to 16 bits rounds twice in eager (float64
    and integers go through float: 1 + 2^-11 + 2^-40 is 1.0 in float16), ties and overflow to inf."""
    x = special_tensor(dtype)
    if dtype == torch.float64:
        more = [1 + 2**-11 + 2**-40, 1 + 2**-8 + 2**-40, 65519.99, 65520.0, 3.3961e38, 2.0**-25, 2.0**-24 * 1.5, 1e-40]
    elif dtype in (torch.int64, torch.int32):
        more = [65519, 65520, 2049, 2051, 2**24 + 1, 2**30 + 2**22 + 1, -65520, 257, 259]
    else:
        more = []
    x = torch.cat([x, torch.tensor(more, dtype=dtype)]) if more else x
    return x.repeat(3)  # vector loop and tail alike


@pytest.mark.parametrize("source", ALL_DTYPES, ids=str)
def test_casts_to_and_from_16_bit_floats_are_exact(source):
    """x.to(t) for t in every dtype from a 16-bit float, and every dtype to float16/bfloat16,
    bit for bit (NaN where eager has NaN), in one graph per source dtype."""
    x = _cast_inputs(source)
    targets = [t for t in (ALL_DTYPES if source in HALF_FLOATS else HALF_FLOATS) if t != source]
    fn = lambda x: tuple(x.to(t) for t in targets)  # noqa: E731
    got = compile_graph(fx.symbolic_trace(fn), [x.clone()], target="cpp").call(x)
    for g, e in zip(got, fn(x)):
        assert describe_mismatches(f"{source} -> {e.dtype}", g, e, [x], exact=True) is None, \
            describe_mismatches(f"{source} -> {e.dtype}", g, e, [x], exact=True)


@pytest.mark.parametrize("dtype", HALF_FLOATS, ids=str)
def test_constants_where_comparisons_and_indexing(dtype):
    """Constants round to the 16-bit dtype as eager's (0.1, 1e-7: a subnormal; x + 70000.0 is inf in
    float16, x * 70000.0 multiplies in float), and
    where/comparisons/max/min/argmax/indexing/cat of 16-bit values are exact."""
    x = torch.cat([special_tensor(dtype), torch.randn(40).to(dtype)])
    y = torch.randn(x.shape).to(dtype)
    idx = torch.randint(0, x.numel(), (17,))

    def fn(x, y, idx):
        return (torch.full_like(x, 0.1), torch.full_like(x, 65504.0), torch.full_like(x, 1e-7), x + 70000.0, x * 70000.0, x == 0.1,
                torch.where(x > 0.3, x, 0.1), torch.where(x < y, x, y), x < y, x >= y.float(), x.clamp(-1, 60000.0),
                x.masked_fill(x < 0, -65504.0), x[idx], x.index_select(0, idx), torch.cat([x, y]), x.amax(),
                x.reshape(-1, 1).amin(0), x.argmax(), y.argmin(), torch.maximum(x, y), torch.minimum(x, y), -x, x.abs(),
                torch.gather(x, 0, idx), x.flip(0), x.to(torch.float32) * 0.1)

    got = compile_graph(fx.symbolic_trace(fn), [x, y, idx], target="cpp").call(x, y, idx)
    for k, (g, e) in enumerate(zip(got, fn(x, y, idx))):
        assert describe_mismatches(f"output {k}", g, e, [x], exact=True) is None, \
            describe_mismatches(f"output {k}", g, e, [x], exact=True)


@pytest.mark.parametrize("dtype", HALF_FLOATS, ids=str)
def test_reductions_accumulate_in_float(dtype):
    """sum/mean/var of 16-bit floats accumulate in float32 as eager on CPU: 4096 ones in float16
    sum to 4096 (a float16 accumulator sticks at 2048), rows, columns and whole tensors alike."""
    x = torch.ones(64, 4096, dtype=dtype)
    z = torch.randn(257, 300).to(dtype)

    def fn(x, z):
        return (x.sum(-1), x.sum(), x.mean(0), z.sum(0), z.sum(1), z.var(1), z.var(0), z.mean(), z.amax(1), z.argmax(0),
                z.sum())

    got = compile_graph(fx.symbolic_trace(fn), [x, z], target="cpp").call(x, z)
    expected = fn(x, z)
    assert got[0].eq(4096).all() and got[1].item() == expected[1].item()
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, equal_nan=True)


# -- a float16 transformer-like block through both entry points, no fallback -------------------------------

class Block(torch.nn.Module):
    def __init__(self, d=64, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.proj = torch.nn.Linear(d, d)
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.up, self.down = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        attn = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.down(torch.nn.functional.gelu(self.up(self.ln2(x))))


@pytest.mark.parametrize("entry", ["kiln.compile", "torch.compile"])
@pytest.mark.parametrize("dtype", HALF_FLOATS, ids=str)
def test_16_bit_block_compiles_without_fallback(entry, dtype, monkeypatch):
    """KILN_STRICT=1: a graph Kiln cannot compile raises instead of running eagerly. Linear layers
    differ from eager by one 16-bit rounding (eager's addmm adds the bias before rounding, Kiln
    after the matmul's), which the residual sums carry on as absolute errors of one rounding of
    values near 1: compared within that, and no further from a float64 run than eager plus one
    such rounding."""
    monkeypatch.setattr(config, "strict", True)
    torch.manual_seed(0)
    model = Block().to(dtype).eval()
    x = torch.randn(2, 16, 64).to(dtype)
    torch._dynamo.reset()
    compiled = kiln.compile(model) if entry == "kiln.compile" else torch.compile(model, backend="kiln")
    with torch.no_grad():
        expected = model(x)
        got = compiled(x)
        got_again = compiled(x)
        reference = Block().double()
        reference.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
        exact = reference(x.double())
    step = HALF_TOL[dtype]["rtol"]  # about one rounding of a value near 1
    torch.testing.assert_close(got, expected, rtol=step, atol=step)
    assert (got.double() - exact).abs().max() <= (expected.double() - exact).abs().max() + step
    assert got.dtype == dtype
    torch.testing.assert_close(got_again, got, rtol=0, atol=0)
