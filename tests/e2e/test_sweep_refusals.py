"""The OpInfo back-end sweep's (issue 20) whole-graph refusals where eager does not raise, by class,
each now compiled: resize_/resize_as_ within a tensor's own elements (a chain of views), an op that
reads tensor data while tracing (tensor_split's tensor indices: the graph splits there), in-place
random ops whose functional twin is `foo_functional` (normal_), and as_strided of a complex op result
(stft: on its real pair). Values, written inputs, layouts and aliasing equal eager's, under
KILN_STRICT=1 (no graph may run eagerly whole); random draws are Kiln's own stream (docs/prims.md)."""
import operator
import warnings

import pytest
import torch

import kiln
from kiln import config, prims, records
from kiln.fallback import KilnCompileWarning
from kiln_entries import ENTRY_POINTS

NAN, INF = float("nan"), float("inf")


pytestmark = pytest.mark.usefixtures("strict")


def _layout(t):
    return tuple(t.shape), t.stride(), t.storage_offset()


def _run(compiled, fn, *args):
    """compiled and eager on clones of args: outputs, inputs after the call, their layouts, and which
    outputs are the inputs themselves."""
    mine, theirs = [a.clone() for a in args], [a.clone() for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        got = compiled(*mine)
    expected = fn(*theirs)
    got, expected = (got if isinstance(got, tuple) else (got,)), (expected if isinstance(expected, tuple) else (expected,))
    torch.testing.assert_close(got, expected, equal_nan=True)
    torch.testing.assert_close(mine, theirs, equal_nan=True)
    # outputs: shape and strides (an output viewing an intermediate alone is a fresh tensor: offset 0)
    assert [_layout(t)[:2] for t in got] == [_layout(t)[:2] for t in expected]
    assert [_layout(t) for t in mine] == [_layout(t) for t in theirs]
    assert [[o is a for a in mine] for o in got] == [[o is a for a in theirs] for o in expected]
    return got


# -- resize_ / resize_as_: a metadata change while the tensor keeps its elements ----------------------
def resize_input(x):
    return x.resize_(25, 5)


def resize_result(x):
    y = x * 2
    y.resize_(3, 4)  # fewer elements: the first 12
    return y + 1


def resize_then_write(x):
    y = x.resize_(25, 5)
    y.select(0, 0).fill_(7)  # lands in x's first row, seen through x
    return x.sum(), y


def resize_channels_last(x):
    return x.resize_(2, 3, 4, 4, memory_format=torch.channels_last)


def resize_same_shape_keeps_strides(x):
    z = (x[0] + 1).t()
    z.resize_(5, 5)  # eager keeps a transposed tensor's strides when the size does not change
    return z * 1


def resize_to_empty_and_0d(x):
    a = (x + 1).resize_(0, 3)
    b = (x[0, 0, :1] * 3).resize_(())
    c = x[0, 0, 0].clone().resize_(1, 1, 1)
    return a, b, c


def resize_as_smaller(x):
    return x.resize_as_(torch.empty(4, 6))


def resize_of_a_view(x):
    v = x[1]  # contiguous, at offset 25
    v.resize_(5, 5)
    v.mul_(-1)
    return x


RESIZES = [resize_input, resize_result, resize_then_write, resize_channels_last, resize_same_shape_keeps_strides,
           resize_to_empty_and_0d, resize_as_smaller, resize_of_a_view]
SPECIAL = torch.tensor([NAN, -INF, INF, -0.0, 0.0, 1e-45, -3.4e38])


def _cube():
    x = torch.arange(125.0).reshape(5, 5, 5)
    x.view(-1)[:7] = SPECIAL
    return x


def _back_end(fn):
    """fn's whole graph straight to the back end (the entry points may break the graph at resize_)."""
    return lambda *args: kiln.compile_fx(torch.fx.symbolic_trace(fn), [a.clone() for a in args])(*args)


ENTRIES = {"compile_fx": _back_end, **ENTRY_POINTS}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("fn", RESIZES, ids=lambda f: f.__name__)
def test_resize_within_its_elements_compiles(fn, entry):
    x = _cube() if fn is not resize_channels_last else torch.arange(96.0).reshape(2, 3, 4, 4)
    compiled = ENTRIES[entry](fn)
    _run(compiled, fn, x)  # under KILN_STRICT=1: a graph refused whole raises


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float16, torch.complex64])
def test_resize_in_every_dtype(dtype):
    x = torch.arange(125).reshape(5, 5, 5).to(dtype)
    _run(kiln.compile_fx(torch.fx.symbolic_trace(resize_input), [x.clone()]), resize_input, x)


def test_resize_past_its_elements_still_refused_never_wrong(monkeypatch):
    """Growing reaches memory eager has not initialised (or storage beyond the tensor): refused
    whole, so the graph runs eagerly and gives eager's result where it is defined."""
    def grow(x):
        y = x + 1
        y.resize_(30)
        return y[:25] * 2

    x = torch.arange(25.0).reshape(5, 5)
    with pytest.raises(Exception, match="beyond the tensor's own elements"):
        kiln.compile_fx(torch.fx.symbolic_trace(grow), [x.clone()])
    monkeypatch.setattr(config, "strict", False)
    with pytest.warns(KilnCompileWarning):
        got = kiln.compile_fx(torch.fx.symbolic_trace(grow), [x.clone()])(x.clone())
    torch.testing.assert_close(got, grow(x.clone()))


# -- an op that reads tensor values while tracing: the graph splits there ----------------------------
def split_by_tensor_indices(x, idx, n):
    """exp, then tensor_split by the tensor `idx` (n parts), then a product per part."""
    parts = torch.tensor_split(x.exp(), idx, dim=1)
    return tuple(parts[i] * 2 for i in range(n))


def _split_graph(n):
    g = torch.fx.Graph()
    x, idx = g.placeholder("x"), g.placeholder("idx")
    parts = g.call_function(torch.tensor_split, (g.call_method("exp", (x,)), idx), {"dim": 1})
    g.output(tuple(g.call_function(operator.mul, (g.call_function(operator.getitem, (parts, i)), 2))
                   for i in range(n)))
    return torch.fx.GraphModule(torch.nn.Module(), g)


@pytest.mark.parametrize("idx", [torch.tensor([1, 3]), torch.tensor(2), torch.tensor([0, 0, 9])])
def test_tensor_split_with_tensor_indices_splits_the_graph(idx):
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    x[0, :4] = torch.tensor([NAN, -INF, INF, -0.0])
    n = idx.item() if idx.dim() == 0 else len(idx) + 1
    compiled = kiln.compile_fx(_split_graph(n), [x.clone(), idx.clone()])
    _run(compiled, lambda x, idx: split_by_tensor_indices(x, idx, n), x, idx)
    done = records.backend_records()
    assert all(r.compiled for r in done)
    assert any(r.split for r in done)
    assert sum(r.kernels for r in done) >= 2  # exp before the op and the products after it are compiled


# -- in-place random ops with a foo_functional twin ----------------------------------------------
def normal_in_place(x, y):
    z = (x * 0).normal_(2.0, 3.0)  # an op result
    y.normal_(-1.0, 0.5)            # a graph input, written
    return z, y


def test_normal_in_place_compiles_with_kiln_draws():
    """Kiln's draws are its own stream, not eager's (docs/prims.md): identical here means the
    written input is the returned tensor and holds its draw, compiled draws equal the reference
    decomposition's for one torch.manual_seed, a new call draws anew, and the distributions hold."""
    n = 100_000
    x, y = torch.zeros(n), torch.zeros(n)
    gm = torch.fx.symbolic_trace(normal_in_place)
    compiled = kiln.compile_fx(gm, [x.clone(), y.clone()])
    assert all(r.compiled and not r.fallbacks for r in records.backend_records())
    mine = y.clone()
    torch.manual_seed(3)
    z, out = compiled(x, mine)
    assert out is mine
    reference = prims.lower(gm, [x.clone(), y.clone()])
    torch.manual_seed(3)
    ref_z, ref_y = reference(x, y.clone())[:2]
    torch.testing.assert_close((z, mine), (ref_z, ref_y), rtol=1e-6, atol=1e-6)
    assert abs(z.mean().item() - 2.0) < 0.05 and abs(z.std().item() - 3.0) < 0.05
    assert abs(mine.mean().item() + 1.0) < 0.01 and abs(mine.std().item() - 0.5) < 0.01
    again = y.clone()
    compiled(x, again)
    assert not torch.equal(again, mine)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_normal_in_place_other_dtypes(dtype):
    y = torch.zeros(4000, dtype=dtype)
    compiled = kiln.compile_fx(torch.fx.symbolic_trace(lambda y: y.normal_()), [y.clone()])
    out = compiled(y)
    assert out is y and y.dtype == dtype and abs(y.float().mean().item()) < 0.1 and 0.9 < y.float().std().item() < 1.1


# -- as_strided of a complex op result, on its pair ------------------------------------------------
def complex_as_strided(z):
    w = z * (1 - 2j)
    return w.as_strided((3, 2), (1, 3), 1), w.t().contiguous().as_strided((2, 2), (2, 1), 4)


def complex_as_strided_with_gaps(z):
    """Outputs whose eager strides have gaps or overlap: their pairs are written in twice them."""
    return (z * (1 - 2j)).as_strided((2, 2), (1, 3), 1), (z + 1).as_strided((2,), (4,)), \
        (z * 1).as_strided((2, 2), (1, 1), 1)


def stft_complex(z):
    return torch.stft(z, n_fft=10, return_complex=True)


@pytest.mark.parametrize("fn", [complex_as_strided, complex_as_strided_with_gaps, stft_complex],
                         ids=lambda f: f.__name__)
def test_as_strided_of_a_complex_result(fn):
    if fn is stft_complex:
        z = torch.randn(100, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    else:
        z = torch.tensor([[1 + 2j, complex(NAN, 1), complex(-INF, -0.0)], [complex(-0.0, INF), 3j, -1 + 0j],
                          [0j, complex(1e-45, -1e-45), 5 - 5j]], dtype=torch.complex64)
    compiled = kiln.compile_fx(torch.fx.symbolic_trace(fn), [z.clone()])
    _run(compiled, fn, z)
    assert all(r.compiled for r in records.backend_records())


# -- a complex output that is a fresh copy of a graph input ------------------------------------------
def copy_of_input(z):
    return torch.zeros_like(z).copy_(z), torch.diff(z, 0)


def test_complex_output_copied_from_an_input():
    """The kernel copying it works on its pair (no kernel can copy a complex buffer)."""
    z = torch.tensor([[1 + 2j, complex(NAN, -0.0)], [complex(-INF, INF), -0.0j]], dtype=torch.complex64).t()
    compiled = kiln.compile_fx(torch.fx.symbolic_trace(copy_of_input), [z.clone()])
    mine = z.clone()
    got = _run(compiled, copy_of_input, z)
    assert all(g is not mine and g.untyped_storage().data_ptr() != mine.untyped_storage().data_ptr() for g in got)


# -- a complex argument of a library call in another layout than its pair's -------------------------
def hfft2_of_a_product(z):
    return torch.fft.hfft2(z * (1 + 1j)), torch.fft.hfftn(z.conj() + 1, s=(4, 6))


def test_library_call_gets_a_pair_laid_out_as_eager():
    """hfft2 hands c2r its conjugate in eager's (transposed) layout: the pair kernel writes it so,
    where a copy of the complex value would need a complex kernel (the graph was refused whole)."""
    z = torch.randn(5, 6, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    z[0, 0] = complex(INF, -0.0)
    z[1, 2] = complex(NAN, 1)
    compiled = kiln.compile_fx(torch.fx.symbolic_trace(hfft2_of_a_product), [z.clone()])
    _run(compiled, hfft2_of_a_product, z)
    assert all(r.compiled for r in records.backend_records())


def test_complex_scalar_add_with_positional_alpha():
    """aten.add.Scalar / sub.Scalar / rsub.Scalar take alpha positionally (rms_norm's `+ eps` on a
    complex mean): the pair decomposition raised TypeError and the graph was refused whole."""
    aten = torch.ops.aten

    def fn(z):
        return aten.add.Scalar(z, 2.5, 2), aten.sub.Scalar(z, 1 - 1j, 3), aten.rsub.Scalar(z, INF, 2), \
            torch.nn.functional.rms_norm(z, (3,))

    z = torch.tensor([[1 + 2j, complex(NAN, -0.0), -0.0j], [complex(-INF, 1), 3e38 + 0j, 1e-45j]],
                     dtype=torch.complex64)
    _run(kiln.compile_fx(torch.fx.symbolic_trace(fn), [z.clone()]), fn, z)


def test_complex_library_result_with_gaps_read_as_a_pair():
    """A complex library result with gaps (empty_strided) is made dense by a library copy before its
    pair is taken; its view's argument was copied by a complex kernel (the graph was refused whole)."""
    g = torch.fx.Graph()
    e = g.call_function(torch.empty_strided, ((5,), (4,)), {"dtype": torch.complex64})
    g.output((g.call_method("detach", (e,)),))
    got = kiln.compile_fx(torch.fx.GraphModule(torch.nn.Module(), g), [])()
    want = torch.empty_strided((5,), (4,), dtype=torch.complex64)
    assert got[0].shape == want.shape and got[0].dtype == want.dtype  # uninitialised values
