"""Op-level fallback: an ATen op in a dtype the target cannot render (complex, float8) runs as is
between generated kernels, in the same compiled graph, instead of the whole graph running eagerly.
Both entry points, both targets (Triton in its interpreter on CPU); values, mutated inputs and
aliasing equal eager's."""
import warnings

import pytest
import torch

import kiln
from kiln import config, records
from kiln.fallback import KilnCompileWarning
from kiln.backend import compile_graph
from kiln.inductor.ir.schedule import FusedKernel, Run
from kiln_entries import ENTRY_POINTS

NAN, INF = float("nan"), float("inf")


def _entry_points():
    return ENTRY_POINTS


pytestmark = pytest.mark.usefixtures("fresh")


@pytest.fixture(params=["cpp", "triton"])
def target(request, monkeypatch):
    monkeypatch.setattr(config, "target", request.param)
    return request.param


def _run(entry, fn, *args):
    """fn compiled and eager on clones of args, under KILN_STRICT=1: no graph may run eagerly whole.
    (Only Kiln's warnings are errors: Triton's interpreter warns on numpy's inf/nan arithmetic.)"""
    mine, theirs = [a.clone() for a in args], [a.clone() for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        got = _entry_points()[entry](fn)(*mine)
    expected = fn(*theirs)
    torch.testing.assert_close(got, expected, equal_nan=True)
    torch.testing.assert_close(mine, theirs, equal_nan=True)  # mutated inputs
    return got, mine


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setattr(config, "strict", True)


def _compiled_records():
    done = records.backend_records()
    assert done and all(r.compiled for r in done), [str(r) for r in done]
    return done


def rope(x, freqs_cis, w):
    """A rotary embedding with a complex square root (an op-level fallback: decomp/complex.py leaves
    it to eager), then attention-like scores: real kernels on both sides of complex math."""
    x = x * 0.5
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    y = torch.view_as_real(xc.cos() * freqs_cis).flatten(3)
    return torch.softmax(y @ w, -1)


def _rope_inputs(n=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, 2, 8, generator=g)
    freqs = torch.polar(torch.ones(n, 1, 4), torch.randn(n, 1, 4, generator=g))
    return x, freqs, torch.randn(8, 8, generator=g)


def fft_abs(x):
    return torch.fft.rfft(x).abs() + 1


def polar(a, b):
    return torch.polar(a, b) * 2


def polar_sin(a, b):
    return torch.polar(a, b).sin()


def _special(n):
    base = torch.tensor([0.0, -0.0, 1.5, -2.0, INF, -INF, NAN, 1e30])
    return base.repeat(n // len(base) + 1)[:n]


@pytest.mark.parametrize("entry", _entry_points())
def test_rope_compiles_with_kernels_around_the_complex_op(entry, target):
    _run(entry, rope, *_rope_inputs())
    (r,) = _compiled_records()
    assert r.kernels >= 2 and "aten.cos.default" in r.fallback_ops
    assert "aten.view_as_complex.default" not in r.fallback_ops  # an extern prim: a library call by design


def test_rope_schedule_runs_kernels_before_and_after_the_fallback():
    def rope_fixed(x, freqs_cis, w):  # symbolic_trace cannot unpack x.shape
        xc = torch.view_as_complex((x * 0.5).reshape(1, 4, 2, 4, 2))
        return torch.softmax(torch.view_as_real(xc.cos() * freqs_cis).flatten(3) @ w, -1)

    gm = torch.fx.symbolic_trace(rope_fixed)
    cg = compile_graph(gm, list(_rope_inputs()), target="cpp")
    order = ["kernel" if isinstance(s.item, FusedKernel) else s.item.kind
             for s in cg.steps if isinstance(s, Run)]
    assert "fallback" in order
    first, last = order.index("fallback"), len(order) - 1 - order[::-1].index("fallback")
    assert "kernel" in order[:first] and "kernel" in order[last + 1:], order
    complex_kernels = [n for k in cg.kernels for n in k.nodes if n.buffer.layout.dtype.is_complex]
    assert not complex_kernels


@pytest.mark.parametrize("entry", _entry_points())
def test_fft_abs_special_values(entry, target):
    """The FFT is an extern call; abs of its complex result is hypot of the pair, in a kernel."""
    _run(entry, fft_abs, _special(16).reshape(2, 8))
    (r,) = _compiled_records()
    assert r.kernels >= 1 and r.fallback_ops == ()


@pytest.mark.parametrize("entry", _entry_points())
def test_fft_of_no_rows_raises_eagers_error(entry):
    """MKL refuses an empty batch in eager too: the compiled call raises eager's own error."""
    x = torch.empty(0, 8)
    with pytest.raises(RuntimeError) as expected:
        fft_abs(x)
    with pytest.raises(RuntimeError) as got:
        _entry_points()[entry](fft_abs)(x)
    assert str(expected.value) in str(got.value)


@pytest.mark.parametrize("entry", _entry_points())
@pytest.mark.parametrize("n", [8, 0])
def test_polar_special_values_and_empty(entry, target, n):
    a, b = _special(n).abs(), _special(n).flip(0)
    _run(entry, polar_sin, a, b)
    (r,) = _compiled_records()
    assert r.fallback_ops == ("aten.sin.default",)


def complex_views(z, x):
    return torch.view_as_real(z), z.real, z.imag, torch.view_as_complex(x), z * 2


@pytest.mark.parametrize("entry", _entry_points())
def test_views_of_complex_tensors_alias_as_in_eager(entry):
    z = torch.complex(_special(5), _special(5).flip(0))
    x = torch.randn(5, 2)
    got, (z_in, x_in) = _run(entry, complex_views, z, x)
    for view in got[:3]:
        assert view.untyped_storage().data_ptr() == z_in.untyped_storage().data_ptr()
    assert got[3].untyped_storage().data_ptr() == x_in.untyped_storage().data_ptr()


def complex_writes(z, y):
    z.mul_(2)
    y.add_(z.abs())
    return z.sum(), y * 3


@pytest.mark.parametrize("entry", _entry_points())
def test_complex_inputs_written_in_place(entry):
    z = torch.complex(_special(6), torch.arange(6.0))
    _run(entry, complex_writes, z, torch.ones(6))
    _compiled_records()


def complex_view_writes(z, x):
    z.real.add_(x)
    z.imag.mul_(2)
    torch.view_as_complex(x.reshape(2, 2)).mul_(1j)
    return z.abs() + x, torch.view_as_real(z)[..., 0]


def test_writes_through_views_of_complex_tensors():
    """view_as_real / view_as_complex are inverse views: a write through one scatters back through
    the other. (Under kiln.compile, capture breaks the graph at `z.real` and hands over z and z.imag
    as inputs sharing storage, a hidden alias that runs eagerly, so torch.compile only.)"""
    _run("torch.compile", complex_view_writes, torch.complex(_special(4), torch.arange(4.0)), torch.randn(4))
    _compiled_records()


def zero_dim(z, x):
    return (z * x).sum(), torch.abs(z) + x


@pytest.mark.parametrize("entry", _entry_points())
def test_zero_dim_complex(entry):
    _run(entry, zero_dim, torch.tensor(1 + 2j), torch.tensor(3.0))


def complex64_and_128(a, b):
    return (a.to(torch.complex128) * b).real.float() + 1


@pytest.mark.parametrize("entry", _entry_points())
def test_complex128(entry):
    a = torch.complex(torch.randn(4), torch.randn(4))
    _run(entry, complex64_and_128, a, torch.complex(torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)))


def float8_round_trip(x):
    return (x * 2).to(torch.float8_e4m3fn).to(torch.float32) + 1


@pytest.mark.parametrize("entry", _entry_points())
def test_float8_runs_as_is_between_kernels(entry, target):
    _run(entry, float8_round_trip, torch.tensor([0.0, -0.0, 1.3, 448.0, -3.7, NAN]))
    (r,) = _compiled_records()
    assert r.kernels == 2 and r.fallback_ops == ("aten._to_copy.default",)


def view_of_computed_buffer(x, w):
    """view_as_complex views a kernel's buffer; the matmul after it must not get that storage."""
    c = torch.view_as_complex((x * 2).reshape(8, 4, 2))
    z = x @ w
    return torch.view_as_real(c * c).reshape(8, 8) + z, torch.fft.fft(c)


@pytest.mark.parametrize("entry", _entry_points())
def test_a_library_view_keeps_its_base_from_reuse(entry):
    g = torch.Generator().manual_seed(1)
    _run(entry, view_of_computed_buffer, torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g))


# -- reporting: records, explain, dump, logs; KILN_STRICT=ops ----------------------------------------
@pytest.mark.parametrize("entry", _entry_points())
def test_strict_ops_raises_naming_the_op_and_reason(entry, monkeypatch):
    monkeypatch.setattr(config, "strict", "ops")
    with pytest.raises(Exception, match=r"KILN_STRICT=ops.*aten\.sin\.default.*complex64 has no C\+\+ rendering"):
        _entry_points()[entry](polar_sin)(torch.rand(3), torch.randn(3))


@pytest.mark.parametrize("entry", _entry_points())
def test_strict_ops_compiles_a_graph_with_no_fallback(entry, monkeypatch):
    monkeypatch.setattr(config, "strict", "ops")
    _run(entry, lambda x: torch.softmax(x * 2, -1), torch.randn(3, 4))
    (r,) = _compiled_records()
    assert r.fallback_count == 0


def test_records_count_fallbacks_with_reasons():
    def twice(z):
        return torch.view_as_real(z.cos().cos()).sum()
    _run("kiln.compile", twice, torch.complex(torch.randn(3), torch.randn(3)))
    (r,) = _compiled_records()
    sqrt = [f for f in r.fallbacks if f.op == "aten.cos.default"]
    assert sqrt and sqrt[0].count == 2 and sqrt[0].reason == "dtype complex64 has no C++ rendering"
    assert r.fallback_count == sum(f.count for f in r.fallbacks) == 2  # view_as_real reads the pair
    assert "op-level fallback(s)" in str(r) and "aten.cos.default x2: dtype complex64 has no C++ rendering" in str(r)


def test_op_fallbacks_are_logged(caplog):
    import logging
    with caplog.at_level(logging.DEBUG, logger="kiln.op_fallbacks"):
        _run("torch.compile", polar_sin, torch.rand(3), torch.randn(3))
    assert any("aten.sin.default: dtype complex64 has no C++ rendering" in m for m in caplog.messages), caplog.messages


SCRIPT = """
import torch, kiln

@kiln.compile
def rot(x, f):
    return torch.view_as_real(torch.view_as_complex(x.reshape(4, 2)).cos() * f).relu()

def spectrum(x):
    return torch.fft.rfft(x * 2).sin().abs() + 1

rot(torch.randn(8), torch.polar(torch.ones(4), torch.randn(4)))
torch.compile(spectrum, backend="kiln")(torch.randn(8))
"""


def _kiln(*args, cwd, **env):
    import os
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "kiln", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=600)


def test_explain_and_dump_show_each_fallback_op_and_reason(tmp_path):
    (tmp_path / "s.py").write_text(SCRIPT)
    out = _kiln("explain", "s.py", cwd=tmp_path, KILN_STRICT="1")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "0 of them ran eagerly in the back end" in text and "op-level fallback(s) inside compiled graphs" in text
    assert "aten.cos.default: dtype complex64 has no C++ rendering" in text, text
    assert "aten.sin.default: dtype complex64 has no C++ rendering" in text, text
    out = _kiln("dump", "s.py", "-o", str(tmp_path / "d"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = sorted((tmp_path / "d").glob("graph_*/2_fallbacks.txt"))
    text = "\n".join(p.read_text() for p in listed)
    assert len(listed) == 2 and "aten.cos.default: dtype complex64 has no C++ rendering" in text, text


# -- data-dependent ops: the graph is split there -----------------------------------------------------
def count_positive(x):
    return torch.nonzero(x > 0).float().sum() * 2 + x.sum()


def exp_selected(x):
    return torch.masked_select(x, x > 0).exp().sum() + x.cos().sum()


def unique_inverse(x):
    u, inv = torch.unique(x, return_inverse=True)
    return u[inv] * 2, inv, u.float() * 3


def scale_by_item(x, y):
    return y * (x.sum() * 2).item() + 1


DATA_DEPENDENT = {"nonzero": count_positive, "masked_select": exp_selected, "unique": unique_inverse,
                  "item": scale_by_item}
SAMPLES = [torch.tensor([1.0, -2.0, 3.0, 0.0, 1.0]), torch.tensor([-1.0, -2.0, -3.0, -0.0, -1.0]),
           torch.tensor([1.0, NAN, -0.0, 0.0, INF]), torch.zeros(5)]


@pytest.fixture
def dynamo_captures_data_dependent_ops():
    with torch._dynamo.config.patch(capture_scalar_outputs=True, capture_dynamic_output_shape_ops=True):
        yield


@pytest.mark.parametrize("name", DATA_DEPENDENT)
def test_data_dependent_op_splits_the_graph(name, dynamo_captures_data_dependent_ops):
    fn = DATA_DEPENDENT[name]
    compiled = torch.compile(fn, backend="kiln")
    y = torch.randn(5, generator=torch.Generator().manual_seed(0))
    for x in SAMPLES:
        args = (x, y) if name == "item" else (x,)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = compiled(*args)
        torch.testing.assert_close(got, fn(*args), equal_nan=True)
    split = [r for r in _compiled_records() if r.fallbacks and "split" in r.fallbacks[0].reason]
    assert len(split) == 1
    assert sum(r.kernels for r in records.backend_records()) >= 2  # parts around the op are compiled


def test_split_graph_on_empty_input(dynamo_captures_data_dependent_ops):
    compiled = torch.compile(count_positive, backend="kiln")
    x = torch.empty(0)
    torch.testing.assert_close(compiled(x), count_positive(x))


def test_tail_versions_are_bounded(monkeypatch, dynamo_captures_data_dependent_ops):
    monkeypatch.setattr(config, "strict", False)
    monkeypatch.setattr(config, "recompile_limit", 2)
    compiled = torch.compile(count_positive, backend="kiln")
    with pytest.warns(kiln.backend.KilnCompileWarning, match="saw more than 2 input shapes"):
        for n in range(5):
            x = torch.cat([torch.ones(n), -torch.ones(5 - n)])
            torch.testing.assert_close(compiled(x), count_positive(x))


def test_strict_ops_raises_on_a_data_dependent_op(monkeypatch, dynamo_captures_data_dependent_ops):
    monkeypatch.setattr(config, "strict", "ops")
    with pytest.raises(Exception, match="KILN_STRICT=ops: torch.nonzero"):
        torch.compile(count_positive, backend="kiln")(torch.randn(5))


def test_split_graph_keeps_input_writes():
    def fn(x, y):
        y.add_(1)
        idx = torch.nonzero(x > 0)
        x.mul_(2)
        return idx.sum() + y.sum()
    gm = torch.fx.symbolic_trace(fn)
    x, y = torch.tensor([1.0, -1.0, 2.0]), torch.ones(3)
    call = kiln.compile_fx(gm, [x.clone(), y.clone()])
    mine, theirs = [x.clone(), y.clone()], [x.clone(), y.clone()]
    torch.testing.assert_close(call(*mine), fn(*theirs))
    torch.testing.assert_close(mine, theirs)
