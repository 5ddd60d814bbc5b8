"""Comparing 16-bit float results with eager (test_opinfo_codegen.py, test_cpp_half.py).

Eager rounds 16-bit results once per op, sometimes after an fma, and its own 16-bit kernels are
sometimes the less accurate (log_softmax's): a result is accepted within one rounding step more
than assert_close's defaults, or where it is at least as close to a float64 run as eager's is.
"""
import pytest
import torch

HALF_TOL = {torch.float16: {"rtol": 2e-3, "atol": 1e-5}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-5}}
HALF_FLOATS = (torch.float16, torch.bfloat16)

# Where the prims graph's values differ from eager's in 16-bit floats; the kernels of both targets
# match the prims references exactly there. These are decompositions to fix, or eager's own
# rounding. They are listed here so that a fix shows up as XPASS.
DECOMPOSITION_DIFFS_16_BIT = {
    ("linspace", torch.float16): "eager steps in float16 arithmetic; the decomposition in float32",
    ("logspace", torch.bfloat16): "eager's bfloat16 logspace is 4 ulp from float64 pow rounded once (Kiln's)",
    ("addr", torch.float16): "the decomposition multiplies and adds in float16 (eager: float32, one rounding)",
    ("addr", torch.bfloat16): "the decomposition multiplies and adds in bfloat16 (eager: float32, one rounding)",
}


def half_cases(cases):
    """The float32 cases again in float16 and bfloat16 (those the op supports)."""
    out = []
    for p in cases:
        op, dtype = p.values
        for half in HALF_FLOATS:
            if dtype == torch.float32 and half in op.supported_dtypes("cpu"):
                why = DECOMPOSITION_DIFFS_16_BIT.get((op.name, half))
                marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                out.append(pytest.param(op, half, id=p.id.replace("float32", str(half).replace("torch.", "")),
                                        marks=marks))
    return out


def assert_close_16_bit(got, expected, dtype, reference, unspecified=()):
    """got vs eager's `expected` (output tuples); `reference()` gives the float64 run's outputs."""
    tol = HALF_TOL[dtype]
    assert len(got) == len(expected), (len(got), len(expected))
    ref = None
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        if i in unspecified:
            continue
        if not e.dtype.is_floating_point:
            torch.testing.assert_close(g, e, rtol=0, atol=0)
            continue
        try:
            torch.testing.assert_close(g, e, equal_nan=True, **tol)
        except AssertionError:
            ref = reference() if ref is None else ref
            r = ref[i].double()
            kiln_err, eager_err = (g.double() - r).abs(), (e.double() - r).abs()
            ok = (kiln_err <= eager_err + tol["atol"] + tol["rtol"] * r.abs()) | (g.isnan() & e.isnan())
            assert ok.all(), f"output {i}: further from float64 than eager ({kiln_err.max()} vs {eager_err.max()})"


def float64_run(call, inputs, dtype):
    return lambda: call(*[x.double() if x.dtype == dtype else x for x in inputs])
