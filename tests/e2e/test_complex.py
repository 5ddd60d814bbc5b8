"""Complex numbers compiled: complex pointwise ops, views and sums decompose to real prims on
(real, imag) pairs (prims/decomp/complex.py), so they run in generated kernels and fuse with the
real code around them; KILN_STRICT=ops proves no op-level fallback. Values equal eager's,
special values (inf, nan, -0.0 in either part) included, for complex64 and complex128, on both
entry points and both targets (Triton in its interpreter, small shapes)."""
import itertools
import warnings

import pytest
import torch

import kiln
from kiln import config, records
from kiln.fallback import KilnCompileWarning

NAN, INF = float("nan"), float("inf")
PARTS = [0.0, -0.0, 1.5, -2.0, INF, -INF, NAN, 3e38]


def _entry_points():
    return {"kiln.compile": lambda fn: kiln.compile(fn),
            "torch.compile": lambda fn: torch.compile(fn, backend="kiln")}


@pytest.fixture(autouse=True)
def _fresh():
    torch._dynamo.reset()
    kiln.reset()
    yield
    torch._dynamo.reset()


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
    torch.testing.assert_close(got, expected, equal_nan=True)
    torch.testing.assert_close(mine, theirs, equal_nan=True)
    return got


def compiled_records():
    done = records.backend_records()
    assert done and all(r.compiled for r in done), [str(r) for r in done]
    return done
