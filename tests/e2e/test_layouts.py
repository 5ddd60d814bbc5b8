"""Views, resize and stride-preserving ops place elements as eager does (issue 21): for inputs in
every memory order of a 4-d shape (all 24 permutations), with and without a storage offset, the
compiled result has eager's values, eager's strides (size-1 dims' included) and, where the result
owns its storage, eager's storage contents; where eager aliases an input, Kiln does too. Ops with
uninitialised results (empty_like, resize_as growing) are compared on metadata only.

CI runs a deterministic sample (every case once on C++, every third on Triton's interpreter);
KILN_FULL=1 runs every case, permutation, offset and target."""
import itertools
import warnings

import pytest
import torch
import torch.fx as fx

import kiln
from kiln import capture, config
from kiln.backend import compile_graph

aten = torch.ops.aten
CL = torch.channels_last
SHAPE = (2, 3, 1, 4)  # a size-1 dim: eager's memory-format checks read its stride
TEMPLATE = (1, 3, 2, 4)  # resize_as's template: as many elements, another shape
PERMS = list(itertools.permutations(range(4)))
OFFSETS = (0, 5)


def laid_out(shape, perm, offset, dtype=torch.float32, seed=0):
    """A tensor of `shape` whose dims lie in memory in the order `perm` (outermost first), `offset`
    elements into its storage; the storage before it holds other values."""
    g = torch.Generator().manual_seed(seed)
    phys = tuple(shape[d] for d in perm)
    flat = torch.randn(offset + max(1, torch.Size(phys).numel()), generator=g) * 10
    flat = flat > 0 if dtype == torch.bool else flat.to(dtype)
    base = flat[offset:offset + torch.Size(phys).numel()].view(phys)
    return base.permute([perm.index(d) for d in range(len(perm))])


def _span(t):
    return 1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) if t.numel() else 0


def _owns_storage(t):
    """Dense over the whole of its storage (a view with gaps or an offset shares what it sees)."""
    return t.storage_offset() == 0 and t.untyped_storage().nbytes() == _span(t) * t.element_size() == \
        t.numel() * t.element_size()


def compare(got, expected, inputs, check="memory"):
    """check: "memory" (values, strides, and storage where eager's result owns it), "values"
    (values and strides) or "meta" (shape, dtype, strides: the values are unspecified)."""
    assert (got.shape, got.dtype) == (expected.shape, expected.dtype)
    assert got.stride() == expected.stride(), f"strides {got.stride()}, eager {expected.stride()}"
    if check == "meta":
        return
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
    for x in inputs:  # eager's view of an input is a view of the caller's tensor in Kiln too
        if expected.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            assert got.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
            assert got.storage_offset() == expected.storage_offset()
    if check == "memory" and _owns_storage(expected):
        assert got.storage_offset() == 0
        in_memory = [torch.as_strided(t, (_span(t),), (1,), 0) for t in (got, expected)]
        torch.testing.assert_close(*in_memory, rtol=0, atol=0, equal_nan=True)


CASES = {}  # name -> (fn(x, y), check, float only)


def case(name, fn, check="memory", floating=False):
    CASES[name] = (fn, check, floating)


def _resize_cases(mf, tag):
    case(f"resize_as_{tag}", lambda x, y: aten.resize_as(x, y, memory_format=mf))
    case(f"resize_as_fresh_{tag}", lambda x, y: aten.resize_as(x * x, y, memory_format=mf))
    case(f"resize_as_shrink_{tag}", lambda x, y: aten.resize_as(x, y[:, :2], memory_format=mf))
    case(f"resize_as_grow_{tag}", lambda x, y: aten.resize_as(x, torch.cat([y, y]), memory_format=mf), "meta")


for _mf, _tag in [(None, "none"), (torch.preserve_format, "preserve"), (torch.contiguous_format, "contiguous"),
                  (CL, "channels_last")]:
    _resize_cases(_mf, _tag)
case("resize_as_same_shape", lambda x, y: aten.resize_as(x, x))
case("resize_as_same_shape_fresh", lambda x, y: aten.resize_as(x * x, x))
case("as_strided_input", lambda x, y: torch.as_strided(x, (3, 4), (1, 3), 2), "values")
case("as_strided_fresh", lambda x, y: torch.as_strided(x * x, (3, 4), (1, 3), 2), "values")
case("as_strided_fresh_permuted", lambda x, y: torch.as_strided((x * x).permute(3, 1, 0, 2), (3, 4), (1, 3)), "values")
case("as_strided_copy_input", lambda x, y: aten.as_strided_copy(x, (3, 4), (1, 3), 2))
case("as_strided_copy_fresh", lambda x, y: aten.as_strided_copy(x * x, (3, 4), (1, 3), 2))
case("as_strided_scatter_input", lambda x, y: torch.as_strided_scatter(x, y[0, :, 0, :2], (3, 2), (1, 3), 2))
case("as_strided_scatter_fresh", lambda x, y: torch.as_strided_scatter(x * x, y[0, :, 0, :2], (3, 2), (1, 3), 2))
case("empty_like", lambda x, y: torch.empty_like(x), "meta")
case("empty_like_fresh", lambda x, y: torch.empty_like(x * x), "meta")
case("empty_like_channels_last", lambda x, y: torch.empty_like(x, memory_format=CL), "meta")
case("empty_like_float64", lambda x, y: torch.empty_like(x, dtype=torch.float64), "meta")
case("rand_like", lambda x, y: torch.rand_like(x), "meta", floating=True)
case("zeros_like", lambda x, y: torch.zeros_like(x))
case("ones_like", lambda x, y: torch.ones_like(x))
case("full_like", lambda x, y: torch.full_like(x, 3))
case("full_like_fresh", lambda x, y: torch.full_like(x * x, 3))
case("full_like_channels_last", lambda x, y: torch.full_like(x, 3, memory_format=CL))
case("zeros_like_contiguous", lambda x, y: torch.zeros_like(x, memory_format=torch.contiguous_format))
case("ones_like_int64", lambda x, y: torch.ones_like(x, dtype=torch.int64))
case("clone", lambda x, y: x.clone())
case("clone_fresh", lambda x, y: (x * x).clone())
case("clone_contiguous", lambda x, y: x.clone(memory_format=torch.contiguous_format))
case("clone_channels_last", lambda x, y: x.clone(memory_format=CL))
case("contiguous", lambda x, y: x.contiguous())
case("contiguous_channels_last", lambda x, y: x.contiguous(memory_format=CL))
case("to_channels_last", lambda x, y: x.to(memory_format=CL))
case("to_float64", lambda x, y: x.to(torch.float64))
case("new_empty_strided", lambda x, y: x.new_empty_strided((3, 4), (1, 3)), "meta")
case("new_empty", lambda x, y: x.new_empty((3, 4)), "meta")
case("new_full", lambda x, y: x.new_full((3, 4), 2))
case("empty_strided", lambda x, y: torch.empty_strided((3, 4), (1, 3)), "meta")
case("empty_permuted", lambda x, y: torch.empty_permuted((2, 3, 4), (2, 0, 1)), "meta")
case("empty_channels_last", lambda x, y: torch.empty(SHAPE, memory_format=CL), "meta")

# Views of an input (returned as views of the caller's tensor) and of a fresh result (computed).
VIEWS = {
    "reshape": lambda x: x.reshape(6, 4), "flatten": lambda x: x.flatten(), "permute": lambda x: x.permute(3, 1, 0, 2),
    "transpose": lambda x: x.transpose(0, 3), "unsqueeze": lambda x: x.unsqueeze(2), "squeeze": lambda x: x.squeeze(),
    "slice": lambda x: x[..., 1:3], "slice_step": lambda x: x[:, ::2], "select": lambda x: x.select(3, 1),
    "diagonal": lambda x: x.diagonal(0, 1, 3), "unfold": lambda x: x.unfold(3, 2, 1), "narrow": lambda x: x.narrow(1, 1, 2),
    "expand": lambda x: x.expand(2, 2, 3, 1, 4), "movedim": lambda x: x.movedim(0, 2), "mT": lambda x: x.mT,
    "unbind": lambda x: x.unbind(1)[1], "split": lambda x: x.split(2, 3)[1], "chunk": lambda x: x.chunk(2, 1)[0],
    "reshape_slice": lambda x: x.reshape(-1)[3:9], "unflatten": lambda x: x.unflatten(3, (2, 2)),
    "view_as": lambda x: x.view_as(x), "view_dtype": lambda x: x.view(torch.int32),
}


def _view_cases(name, view):
    case(f"view_{name}", lambda x, y: view(x), "values")
    case(f"view_{name}_fresh", lambda x, y: view(x * x), "values")


for _name, _view in VIEWS.items():
    _view_cases(_name, _view)

NAMES = sorted(CASES)


def _inputs(perm_index, offset, dtype):
    x = laid_out(SHAPE, PERMS[perm_index], offset, dtype, seed=perm_index)
    y = laid_out(TEMPLATE, PERMS[(7 * perm_index + 3) % len(PERMS)], 0, dtype, seed=100 + perm_index)
    return x, y


def run_case(name, perm_index, offset, target, dtype=torch.float32):
    fn, check, _ = CASES[name]
    x, y = _inputs(perm_index, offset, dtype)
    expected = fn(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to eager
        compiled = compile_graph(fx.symbolic_trace(fn), [x, y], target=target)
    got = compiled.call(x, y)
    compare(got[0] if isinstance(got, (tuple, list)) else got, expected, (x, y), check)


def _sample():
    """Every case once on C++ and every third case on Triton, at rotating permutations and offsets."""
    out = []
    for k, name in enumerate(NAMES):
        out.append((name, (5 * k) % 24, OFFSETS[k % 2], "cpp"))
        if k % 3 == 0:
            out.append((name, (5 * k + 13) % 24, OFFSETS[(k + 1) % 2], "triton"))
    return out


SAMPLE = _sample()
FULL = [(n, p, o, t) for n in NAMES for p in range(24) for o in OFFSETS for t in ("cpp", "triton")]


def _id(item):
    name, p, o, t = item
    return f"{name}-{''.join(map(str, PERMS[p]))}-off{o}-{t}"


@pytest.mark.parametrize("item", SAMPLE, ids=_id)
def test_layout_sample(item):
    run_case(*item)


@pytest.mark.slow
@pytest.mark.parametrize("item", [i for i in FULL if i not in SAMPLE], ids=_id)
def test_layout_full(item):
    run_case(*item)


# Other dtypes: the cases that read or write memory (ints, bools and 16-bit floats).
DTYPE_NAMES = ["resize_as_preserve", "resize_as_fresh_none", "resize_as_shrink_channels_last", "as_strided_copy_fresh",
               "as_strided_scatter_fresh", "zeros_like", "full_like", "clone_channels_last", "empty_like"]
DTYPE_ITEMS = [(n, dt, t) for n in DTYPE_NAMES for dt, t in [(torch.int32, "cpp"), (torch.bool, "cpp"),
                                                            (torch.float16, "cpp"), (torch.bfloat16, "cpp"),
                                                            (torch.float16, "triton")]]


@pytest.mark.parametrize("name, dtype, target", DTYPE_ITEMS, ids=lambda v: str(v).replace("torch.", ""))
def test_layout_dtypes(name, dtype, target):
    k = NAMES.index(name)
    run_case(name, (11 * k + DTYPE_ITEMS.index((name, dtype, target))) % 24, OFFSETS[k % 2], target, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("name, dtype, target", DTYPE_ITEMS, ids=lambda v: str(v).replace("torch.", ""))
def test_layout_dtypes_full(name, dtype, target):
    for p, o in itertools.product(range(24), OFFSETS):
        run_case(name, p, o, target, dtype)


# Issue 21 row 2: resize_as(preserve_format) of a transposed clone against a channels-last template
# with a size-1 dim. Eager keeps x's storage as it lies in memory and restrides it channels-last;
# Kiln passed the template restrided (its size-1 dim's stride 0), so eager's memory-format check
# chose contiguous_format, and the values came out in another order.
def _row2_inputs():
    g = torch.Generator().manual_seed(21)
    x = torch.randn(100, generator=g)[::2].reshape(25, 2).transpose(0, 1).clone()  # strides kept by the clone
    y = torch.randn(1, 3, 2, 3, generator=g).contiguous(memory_format=CL)
    return x, y


def _row2(x, y):
    return torch.ops.aten.resize_as(x, y, memory_format=torch.preserve_format)


@pytest.mark.parametrize("target", ["cpp", "triton"])
def test_issue21_row2_resize_as_keeps_storage_order(target):
    x, y = _row2_inputs()
    got = compile_graph(fx.symbolic_trace(_row2), [x, y], target=target).call(x, y)
    compare(got[0] if isinstance(got, (tuple, list)) else got, _row2(x, y), (x, y))


@pytest.mark.parametrize("entry", ["torch.compile", "kiln.compile"])
def test_issue21_row2_through_entry_points(entry, monkeypatch):
    monkeypatch.setattr(config, "strict", True)
    x, y = _row2_inputs()
    if entry == "torch.compile":
        torch._dynamo.reset()
        compiled = torch.compile(_row2, backend="kiln")
    else:
        capture.reset()
        compiled = kiln.compile(_row2)
    compare(compiled(x, y), _row2(x, y), (x, y))


def _entry_fn(name):
    fn = CASES[name][0]
    return lambda x, y: fn(x, y)  # a new code object per test: no compiled frame is reused


@pytest.mark.parametrize("entry", ["torch.compile", "kiln.compile"])
@pytest.mark.parametrize("name", ["resize_as_fresh_preserve", "as_strided_scatter_fresh", "full_like", "empty_like"])
def test_layout_entry_points(name, entry, monkeypatch):
    monkeypatch.setattr(config, "strict", True)
    x, y = _inputs(9, 5, torch.float32)
    fn, check, _ = CASES[name]
    compiled = torch.compile(_entry_fn(name), backend="kiln") if entry == "torch.compile" else kiln.compile(_entry_fn(name))
    compare(compiled(x, y), fn(x, y), (x, y), check)


@pytest.mark.parametrize("target", ["cpp", "triton"])
def test_same_value_in_two_layouts_reaches_a_library_call_twice(target):
    """x and x.clone(channels_last) are one prims value; resize_as of each reads a different storage
    order, so the two calls must not be merged as one common subexpression."""
    def fn(x, y):
        return aten.resize_as(x, y), aten.resize_as(x.clone(memory_format=CL), y)

    x, y = laid_out((2, 3, 2, 4), (0, 1, 2, 3), 0), torch.randn(4, 12)
    got = compile_graph(fx.symbolic_trace(fn), [x, y], target=target).call(x, y)
    for g, e in zip(got, fn(x, y)):
        compare(g, e, (x, y))


# An output that views an input or another output with another dtype came back with the base's
# dtype (or, narrower, raised): ViewOf now carries the view's dtype.
DTYPE_VIEWS = {
    "narrow_at_offset": (lambda x: x.view(torch.int16)[1:], lambda: torch.randn(20)[4:].view(2, 4, 2)),
    "odd_offset_int8": (lambda x: x.view(torch.int8)[:, 1:], lambda: torch.randn(9)[1:].view(2, 4)),
    "transposed_same_size": (lambda x: x.t().view(torch.int32), lambda: torch.randn(4, 3)),
    "wide_at_offset": (lambda x: x[2:].view(torch.float64), lambda: torch.randn(10)),
    "bool_as_uint8": (lambda x: x.view(torch.uint8), lambda: torch.randn(6) > 0),
    "of_an_output": (lambda x: _and_dtype_views(x * 2), lambda: torch.randn(3, 4)),
}


def _and_dtype_views(y):
    return y, y.view(torch.int16), y[1:].view(torch.uint8)


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("name", sorted(DTYPE_VIEWS))
def test_dtype_view_outputs(name, target):
    fn, make = DTYPE_VIEWS[name]
    x = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compile_graph(fx.symbolic_trace(fn), [x], target=target).call(x)
    expected = fn(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        compare(g, e, (x,))
    for g, e in zip(got[1:], expected[1:]):  # views of the first output share its storage
        assert (g.untyped_storage().data_ptr() == got[0].untyped_storage().data_ptr()) == \
            (e.untyped_storage().data_ptr() == expected[0].untyped_storage().data_ptr())


# Zero-size and 0-dim tensors.
EDGE = {
    "zeros_like_empty": (lambda x: torch.zeros_like(x), lambda: laid_out((2, 0, 1, 3), (3, 1, 0, 2), 2), "memory"),
    "clone_channels_last_empty": (lambda x: x.clone(memory_format=CL), lambda: laid_out((2, 0, 1, 3), (0, 2, 3, 1), 1),
                                  "memory"),
    "resize_as_empty": (lambda x: aten.resize_as(x, x[:, :, :0], memory_format=torch.preserve_format),
                        lambda: laid_out(SHAPE, (0, 3, 2, 1), 3), "memory"),
    "resize_as_0dim": (lambda x: aten.resize_as(x, x[0, 0, 0, 0]), lambda: laid_out(SHAPE, (1, 0, 3, 2), 3), "memory"),
    "full_like_0dim": (lambda x: torch.full_like(x, 7), lambda: torch.randn(9)[4], "memory"),
    "empty_like_0dim": (lambda x: torch.empty_like(x), lambda: torch.randn(9)[4], "meta"),
    "as_strided_copy_0dim_fresh": (lambda x: aten.as_strided_copy(x * x, (), (), 3), lambda: laid_out(SHAPE, (2, 0, 3, 1), 1),
                                   "memory"),
}


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("name", sorted(EDGE))
def test_layout_edges(name, target):
    fn, make, check = EDGE[name]
    x = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = compile_graph(fx.symbolic_trace(fn), [x], target=target)
    got = compiled.call(x)
    compare(got[0] if isinstance(got, (tuple, list)) else got, fn(x), (x,), check)
