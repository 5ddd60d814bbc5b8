"""Every prim's meta rule against its reference implementation, and the inputs the rules must refuse.

Meta rules are what later stages plan buffers and loops from, so for each legal call the rule's
TensorMeta must describe what the reference really returns. Strides are compared only where they
mean something: dims of size 1 can carry any stride (torch itself is not consistent there), and
an empty tensor has no layout.
"""
import pytest
import torch

from kiln.prims import PRIMS, Category, Prim, PrimMetaError, TensorMeta
from kiln.prims.ops.elementwise import BINARY, UNARY
from kiln.prims.ops.extern import EXTERN_REASON

from extern_samples import EXTERN_SAMPLES

CPU = torch.device("cpu")


def _make(shape, dtype, layout="contiguous"):
    """A deterministic tensor; layout "transposed" gives the same shape with non-contiguous strides."""
    g = torch.Generator().manual_seed(0)
    base_shape = tuple(reversed(shape)) if layout == "transposed" else tuple(shape)
    if dtype == torch.bool:
        t = torch.rand(base_shape, generator=g) > 0.5
    elif dtype.is_floating_point:
        t = torch.rand(base_shape, generator=g, dtype=dtype) + 0.5  # positive: log/sqrt stay finite
    else:
        t = torch.randint(0, 5, base_shape, generator=g, dtype=dtype)
    return t.permute(*reversed(range(t.ndim))) if layout == "transposed" else t


def _layouts():
    """(shape, layout) pairs: plain, 0-d, non-contiguous, empty."""
    return [((2, 3), "contiguous"), ((), "contiguous"), ((2, 3), "transposed"), ((0, 3), "contiguous")]


DTYPES = [torch.float32, torch.int64, torch.bool]


def _meta_arg(a):
    return TensorMeta.of(a) if isinstance(a, torch.Tensor) else a


def _same_layout(meta, real):
    assert meta.shape == real.shape and meta.dtype == real.dtype and meta.device == real.device, (meta, real)
    if real.numel() == 0:
        return
    for size, ms, rs in zip(meta.shape, meta.strides, real.strides):
        if size != 1:
            assert ms == rs, f"strides {meta.strides} vs real {real.strides} for shape {meta.shape}"


def _check(prim, *args, **kwargs):
    """The meta rule (on metas) must describe the reference's result (on real tensors)."""
    meta = prim.meta(*[_meta_arg(a) for a in args], **kwargs)
    real = prim.ref(*args, **kwargs)
    metas = meta if isinstance(meta, tuple) else (meta,)
    reals = real if isinstance(real, tuple) else (real,)
    for m, r in zip(metas, reals):
        _same_layout(m, TensorMeta.of(r))


def _accepts(prim, *args):
    try:
        prim.meta(*[_meta_arg(a) for a in args])
        return True
    except PrimMetaError:
        return False


# --- elementwise -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_meta_matches_ref(name):
    prim, checked = PRIMS[name], 0
    for dtype in DTYPES:
        for shape, layout in _layouts():
            x = _make(shape, dtype, layout)
            if _accepts(prim, x):  # dtype kinds a prim refuses are pinned in test_meta_rejects below
                _check(prim, x)
                checked += 1
    assert checked, f"{name} accepted no dtype at all"


NONZERO_DIVISOR = {"trunc_div", "fmod"}


def _scalar_for(dtype):
    return True if dtype == torch.bool else (2.0 if dtype.is_floating_point else 2)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_meta_matches_ref(name):
    prim, checked = PRIMS[name], 0
    for dtype in DTYPES:
        for shape, layout in _layouts():
            a, b = _make(shape, dtype, layout), _make(shape, dtype)  # b contiguous: mixed layouts too
            if name in NONZERO_DIVISOR and not dtype.is_floating_point:
                a, b = a + 1, b + 1  # integer division by zero raises in eager (a divides the scalar below)
            if not _accepts(prim, a, b):
                continue
            s = _scalar_for(dtype)
            _check(prim, a, b)
            _check(prim, a, s)  # one Python scalar operand, on either side
            _check(prim, s, a)
            checked += 1
    assert checked, f"{name} accepted no dtype at all"


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_meta_matches_ref(dtype):
    for shape, layout in _layouts():
        cond, a, b = _make(shape, torch.bool, layout), _make(shape, dtype, layout), _make(shape, dtype)
        _check(PRIMS["where"], cond, a, b)
        _check(PRIMS["where"], cond, a, _scalar_for(dtype))
        _check(PRIMS["where"], cond, _scalar_for(dtype), b)


# --- reductions ------------------------------------------------------------------------------


REDUCTIONS = [n for n, p in PRIMS.items() if p.category is Category.REDUCTION]


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_meta_matches_ref(name):
    prim = PRIMS[name]
    dim_sets = [(0,), (1,)] if name.startswith("arg") else [(), (0,), (1,), (0, 1)]
    for dtype in [torch.float32, torch.int64]:
        for layout in ("contiguous", "transposed"):
            x = _make((2, 3), dtype, layout)
            for dims in dim_sets:
                _check(prim, x, dims)
        _check(prim, _make((), dtype), (0,) if name.startswith("arg") else ())  # 0-d: dim 0 is the tensor
        if not name.startswith("arg"):
            _check(prim, _make((), dtype), (0,))
    if name in ("sum", "prod"):
        _check(prim, _make((0, 3), torch.float32), (0,))  # reducing an empty dim gives the identity
    if name in ("amax", "amin"):
        _check(prim, _make((2, 3), torch.bool), (1,))


# --- shape, movement, conversion, creation, extern -------------------------------------------


def test_broadcast_in_dim_meta_matches_ref():
    bcast = PRIMS["broadcast_in_dim"]
    for dtype in DTYPES:
        _check(bcast, _make((3,), dtype), (2, 3), (1,))
        _check(bcast, _make((1, 3), dtype), (4, 3), (0, 1))  # size-1 dim broadcast
        _check(bcast, _make((2, 3), dtype, "transposed"), (4, 2, 3), (1, 2))
        _check(bcast, _make((), dtype), (2, 2), ())
        _check(bcast, _make((2,), dtype), (2, 5), (0,))  # a leading, not trailing, input dim
        _check(bcast, _make((0, 3), dtype), (2, 0, 3), (1, 2))


def test_reshape_meta_matches_ref():
    for dtype in DTYPES:
        _check(PRIMS["reshape"], _make((2, 3), dtype), (3, 2))
        _check(PRIMS["reshape"], _make((2, 3), dtype, "transposed"), (6,))  # a copy in the reference
        _check(PRIMS["reshape"], _make((), dtype), (1, 1))
        _check(PRIMS["reshape"], _make((1,), dtype), ())
        _check(PRIMS["reshape"], _make((0, 3), dtype), (3, 0))


def test_permute_meta_matches_ref():
    for dtype in DTYPES:
        _check(PRIMS["permute"], _make((2, 3), dtype), (1, 0))
        _check(PRIMS["permute"], _make((2, 3), dtype, "transposed"), (1, 0))
        _check(PRIMS["permute"], _make((2, 3, 4), dtype), (2, 0, 1))
        _check(PRIMS["permute"], _make((), dtype), ())


def test_slice_meta_matches_ref():
    for dtype in DTYPES:
        x = _make((4, 5), dtype)
        _check(PRIMS["slice"], x, (1, 0), (3, 5), (1, 1))
        _check(PRIMS["slice"], x, (0, 1), (4, 5), (3, 2))  # steps that do not divide the range
        _check(PRIMS["slice"], x, (2, 0), (2, 5), (1, 1))  # empty range
        _check(PRIMS["slice"], _make((4, 5), dtype, "transposed"), (0, 1), (4, 4), (2, 1))
        _check(PRIMS["slice"], _make((), dtype), (), (), ())


def test_convert_element_type_meta_matches_ref():
    for src in DTYPES:
        for dst in DTYPES + [torch.float64, torch.int32]:
            for shape, layout in _layouts():
                _check(PRIMS["convert_element_type"], _make(shape, src, layout), dst)


def test_creation_meta_matches_ref():
    for dtype, value in [(torch.float32, 1.5), (torch.int64, 7), (torch.bool, True)]:
        for shape in [(2, 3), (), (0, 4)]:
            _check(PRIMS["full"], shape, value, dtype=dtype, device=CPU)
    for dtype, start, step in [(torch.int64, 3, 2), (torch.int64, 5, -1), (torch.float32, 0.5, 0.25)]:
        for length in (0, 1, 7):
            _check(PRIMS["iota"], length, start=start, step=step, dtype=dtype, device=CPU)


def test_iota_values():
    """iota's reference builds on arange, whose float end point can add or drop an element."""
    for dtype, start, step, length in [(torch.int64, 3, 2, 5), (torch.float32, 1.0, 0.1, 3), (torch.float32, 0.0, 0.3, 10)]:
        got = PRIMS["iota"](length, start=start, step=step, dtype=dtype, device=CPU)
        expected = torch.tensor([start + step * i for i in range(length)], dtype=dtype)
        torch.testing.assert_close(got, expected)


def test_matmul_meta_matches_ref():
    for dtype in (torch.float32, torch.int64):
        _check(PRIMS["matmul"], _make((2, 3), dtype), _make((3, 4), dtype))
        _check(PRIMS["matmul"], _make((2, 3), dtype, "transposed"), _make((3, 4), dtype, "transposed"))
        _check(PRIMS["matmul"], _make((5, 2, 3), dtype), _make((5, 3, 4), dtype))
        _check(PRIMS["matmul"], _make((2, 0), dtype), _make((0, 4), dtype))


def test_data_movement_meta_matches_ref():
    for dtype in DTYPES:
        a, b = _make((2, 3), dtype), _make((4, 3), dtype, "transposed")
        _check(PRIMS["cat"], [a, b], 0)
        _check(PRIMS["cat"], [a, _make((2, 0), dtype), _make((2, 5), dtype)], 1)
        _check(PRIMS["cat"], [_make((0, 3), dtype)], 0)
        x = _make((3, 4), dtype, "transposed")
        fill = True if dtype == torch.bool else 0
        _check(PRIMS["pad"], x, fill, ((1, 2, 0), (0, -1, 1)))
        _check(PRIMS["pad"], x, fill, ((-3, 0, 0), (2, 2, 2)))  # crop everything in dim 0
        _check(PRIMS["pad"], _make((), dtype), fill, ())
        _check(PRIMS["pad"], _make((0, 2), dtype), fill, ((1, 1, 3), (0, 0, 0)))
        _check(PRIMS["rev"], x, (0, 1))
        _check(PRIMS["rev"], x, ())
        _check(PRIMS["rev"], _make((), dtype), ())
        index = torch.tensor([[0, 2, 1], [2, 2, 0]])
        _check(PRIMS["gather"], _make((3, 3), dtype, "transposed"), 0, index)
        _check(PRIMS["gather"], _make((2, 4), dtype), 1, index)
        _check(PRIMS["gather"], _make((3,), dtype), 0, torch.zeros(0, dtype=torch.int64))
        _check(PRIMS["as_strided"], x, (2, 2), (5, 1), 1)
        _check(PRIMS["as_strided"], x, (3,), (0,), 4)
        _check(PRIMS["as_strided"], x, (0, 7), (1, 1), 0)
    for name in ("check_index", "check_index_all"):
        _check(PRIMS[name], torch.tensor([[0, 4], [3, 1]]).t(), 5)
        _check(PRIMS[name], torch.zeros(0, dtype=torch.int64), 0)
        _check(PRIMS[name], torch.tensor(2), 3)


@pytest.mark.parametrize("name", ["check_index", "check_index_all"])
@pytest.mark.parametrize("index", [[0, 5], [-1, 2], [[1], [7]]])
def test_check_index_raises_index_error_like_eager(index, name):
    with pytest.raises(IndexError, match="out of bounds"):
        PRIMS[name](torch.tensor(index), 5)
    with pytest.raises(IndexError):
        PRIMS[name](torch.tensor([0]), 0)  # nothing is in range of an empty dim


def test_empty_meta_matches_ref():
    for dtype in DTYPES:
        for shape in [(2, 3), (), (0, 4)]:
            _check(PRIMS["empty"], shape, dtype=dtype, device=CPU)


def test_random_meta_matches_ref():
    seed = torch.tensor(12345)
    _check(PRIMS["seed"], device=CPU)
    for name in ("uniform", "normal"):
        for dtype in (torch.float32, torch.float64):
            for shape in [(2, 3), (), (0, 4)]:
                _check(PRIMS[name], shape, 0.0, 2.0, dtype=dtype, device=CPU, seed=seed, offset=7)


def test_linalg_check_errors_meta_matches_ref():
    info = torch.zeros(3, dtype=torch.int32)
    _check(PRIMS["linalg_check_errors"], info, "linalg.cholesky", is_matrix=False)
    with pytest.raises(torch.linalg.LinAlgError):  # a nonzero info raises as eager does
        PRIMS["linalg_check_errors"].ref(torch.ones((), dtype=torch.int32), "linalg.cholesky", is_matrix=True)


TABLE_EXTERNS = sorted(EXTERN_REASON)


class _MetaChecker(torch.fx.Interpreter):
    """Runs a prims graph; at every call of `prim`, checks its meta rule against the real result."""

    def __init__(self, gm, prim):
        super().__init__(gm)
        self.prim, self.checked = prim, 0

    def call_function(self, target, args, kwargs):
        out = super().call_function(target, args, kwargs)
        if target is self.prim:
            meta = target.meta(*[_meta_tree(a) for a in args], **{k: _meta_tree(v) for k, v in kwargs.items()})
            metas = meta if isinstance(meta, tuple) else (meta,)
            reals = out if isinstance(out, (tuple, list)) else (out,)
            assert len(metas) == len(reals)
            for m, r in zip(metas, reals):
                _same_layout(m, TensorMeta.of(r))
            self.checked += 1
        return out


def _meta_tree(a):
    if isinstance(a, torch.Tensor):
        return TensorMeta.of(a)
    if isinstance(a, (list, tuple)):
        return type(a)(_meta_tree(x) for x in a)
    return a


@pytest.mark.parametrize("name", TABLE_EXTERNS)
def test_extern_meta_matches_ref(name):
    """Each extern prim's meta rule (torch's fake kernels) against its reference, on OpInfo samples."""
    from kiln import prims
    from torch.testing._internal.common_methods_invocations import op_db

    from kiln_opinfo import graph_of

    assert name in EXTERN_SAMPLES, f"extern prim {name} has no OpInfo sample in tests/prims/extern_samples.py"
    op_name, variant, first = EXTERN_SAMPLES[name]
    op = next(o for o in op_db if (o.name, o.variant_test_name) == (op_name, variant))
    torch.manual_seed(0)
    for i, sample in enumerate(op.sample_inputs("cpu", torch.float32, requires_grad=False)):
        if i < first:
            continue
        if i >= first + 3:
            break
        gm, inputs, _ = graph_of(op, sample)
        try:
            pg = prims.lower(gm, inputs)
        except prims.UnsupportedGraph:
            continue
        checker = _MetaChecker(pg, PRIMS[name])
        torch.manual_seed(0)
        checker.run(*inputs)
        if checker.checked:
            return
    pytest.fail(f"no sample of {op_name}.{variant} from {first} on produced kiln.{name}")


META_TESTED = (set(UNARY) | set(BINARY) | set(REDUCTIONS) | set(TABLE_EXTERNS) | {
    "where", "broadcast_in_dim", "reshape", "permute", "slice", "convert_element_type", "full", "iota", "matmul",
    "cat", "pad", "rev", "gather", "check_index", "check_index_all", "as_strided", "empty", "seed", "uniform", "normal", "linalg_check_errors"})


# --- rejections ------------------------------------------------------------------------------


def m(shape, dtype=torch.float32):
    return TensorMeta.contiguous(shape, dtype, CPU)


F, I, B = torch.float32, torch.int64, torch.bool

REJECTED = [
    # binary: strict shapes and dtypes, scalars that do not fit, dtype kinds
    ("add", (m((2,)), m((3,))), "shapes must match"),
    ("add", (m((2, 3)), m((3,))), "shapes must match"),  # no implicit broadcasting
    ("mul", (m((2,)), m((2,), I)), "dtypes must match"),  # no implicit promotion
    ("add", (m((2,), I), 1.5), "does not fit"),
    ("add", (m((2,), B), 2), "does not fit"),
    ("add", (1, 2), "at least one tensor"),
    ("div", (m((2,), I), m((2,), I)), "not supported"),
    ("sub", (m((2,), B), m((2,), B)), "not supported"),
    ("logical_and", (m((2,)), m((2,))), "not supported"),
    # unary: dtype kinds
    ("exp", (m((2,), I),), "not supported"),
    ("sqrt", (m((2,), B),), "not supported"),
    ("abs", (m((2,), B),), "not supported"),
    ("logical_not", (m((2,)),), "not supported"),
    ("isnan", (m((2,), I),), "not supported"),
    # where
    ("where", (m((2,)), m((2,)), m((2,))), "bool"),
    ("where", (m((2,), B), m((2,)), m((3,))), "shapes must match"),
    ("where", (m((2,), B), m((2,)), m((2,), I)), "dtypes must match"),
    ("where", (m((2,), B), 1.0, 2.0), "tensor value operand"),
    # reductions: dims must be non-negative, in range, sorted and unique
    ("sum", (m((2, 3)), (2,)), "bad dims"),
    ("sum", (m((2, 3)), (-1,)), "bad dims"),
    ("sum", (m((2, 3)), (1, 0)), "sorted and unique"),
    ("sum", (m((2, 3)), (0, 0)), "sorted and unique"),
    ("sum", (m(()), (1,)), "bad dims"),
    ("amax", (m((0, 3)), (0,)), "empty dim"),
    ("argmax", (m((2, 3)), (0, 1)), "exactly one dim"),
    ("argmax", (m((2, 3)), ()), "exactly one dim"),
    # broadcast_in_dim
    ("broadcast_in_dim", (m((3,)), (2, 3), ()), "one output dim per input dim"),
    ("broadcast_in_dim", (m((2, 3)), (2, 3, 4), (1, 0)), "increasing"),
    ("broadcast_in_dim", (m((3,)), (2, 3), (2,)), "increasing and <"),
    ("broadcast_in_dim", (m((3,)), (2, 4), (1,)), "cannot become"),
    ("broadcast_in_dim", (m((3,)), (-1, 3), (1,)), "bad shape"),
    # reshape
    ("reshape", (m((2, 3)), (4, 2)), "cannot reshape"),
    ("reshape", (m((2, 3)), (-2, -3)), "bad shape"),
    # permute
    ("permute", (m((2, 3)), (0, 0)), "not a permutation"),
    ("permute", (m((2, 3)), (0,)), "not a permutation"),
    ("permute", (m((2, 3)), (0, 2)), "not a permutation"),
    # slice
    ("slice", (m((4,)), (3,), (2,), (1,)), "bad range"),
    ("slice", (m((4,)), (0,), (5,), (1,)), "bad range"),
    ("slice", (m((4,)), (-1,), (4,), (1,)), "bad range"),
    ("slice", (m((4,)), (0,), (4,), (0,)), "bad range"),
    ("slice", (m((4, 4)), (0,), (4,), (1,)), "per dim"),
    # matmul
    ("matmul", (m((2, 3)), m((4, 2))), "do not multiply"),
    ("matmul", (m((2, 3)), m((2, 3, 4))), "ranks"),
    ("matmul", (m((3,)), m((3,))), "ranks"),
    ("matmul", (m((2, 3)), m((3, 4), I)), "dtypes must match"),
    ("matmul", (m((2, 2, 3)), m((3, 3, 4))), "do not multiply"),
    # conversion
    ("convert_element_type", (m((2,)), "float32"), "expected a dtype"),
    # new elementwise prims: dtype kinds
    ("atan2", (m((2,), I), m((2,), I)), "not supported"),
    ("copysign", (m((2,)), m((2,), I)), "dtypes must match"),
    ("hypot", (m((2,)), m((3,))), "shapes must match"),
    ("fmod", (m((2,), B), m((2,), B)), "not supported"),
    ("bitwise_and", (m((2,)), m((2,))), "not supported"),
    ("bitwise_or", (m((2,), I), 1.5), "does not fit"),
    ("bitwise_xor", (m((2,), I), m((2,), B)), "dtypes must match"),
    ("shift_left", (m((2,), B), m((2,), B)), "not supported"),
    ("shift_right", (m((2,)), m((2,))), "not supported"),
    ("trunc_div", (m((2,)), m((2,))), "not supported"),
    ("bitwise_not", (m((2,), B),), "not supported"),
    ("signbit", (m((2,), I),), "not supported"),
    ("isinf", (m((2,), B),), "not supported"),
    ("erfc", (m((2,), I),), "not supported"),
    *[(n, (m((2,), I),), "not supported") for n in ("asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
                                                    "atanh", "exp2", "log2", "log10")],
    # data movement
    ("cat", ([], 0), "non-empty list"),
    ("cat", ([m((2, 3)), m((2, 3), I)], 0), "dtypes must match"),
    ("cat", ([m((2, 3)), m((3, 3))], 1), "differ outside dim"),
    ("cat", ([m((2, 3))], 2), "bad dim"),
    ("pad", (m((2, 3)), 0.0, ((0, 0, 0),)), "per dim, got 1 for rank 2"),
    ("pad", (m((2,)), 0.0, ((0, 0, -1),)), "negative interior"),
    ("pad", (m((2,)), 0.0, ((-2, -1, 0),)), "removes more"),
    ("pad", (m((2,)), True, ((1, 1, 0),)), "bool pad value"),
    ("pad", (m((2,), I), 0.5, ((1, 1, 0),)), "does not fit"),
    ("rev", (m((2, 3)), (2,)), "bad dims"),
    ("rev", (m((2, 3)), (0, 0)), "bad dims"),
    ("gather", (m((2, 3)), 0, m((2, 3), torch.int32)), "int64"),
    ("gather", (m((2, 3)), 0, m((2,), I)), "rank"),
    ("gather", (m((2, 3)), 0, m((2, 4), I)), "larger than input"),
    ("gather", (m((2, 3)), 2, m((2, 3), I)), "bad dim"),
    ("check_index", (m((2,), torch.int32), 3), "int64"),
    ("check_index", (m((2,), I), -1), "bad size"),
    ("check_index", (m((2,), I), 2.0), "bad size"),
    ("check_index", (3, 4), "expected a tensor"),
    ("check_index_all", (m((2,), torch.int32), 3), "int64"),
    ("check_index_all", (m((2,), I), -1), "bad size"),
    ("as_strided", (m((2, 3)), (2, 2), (3, 3), 0), "reads element 6"),
    ("as_strided", (m((2, 3)), (2,), (1, 1), 0), "bad shape"),
    ("as_strided", (m((2, 3)), (2,), (1,), -1), "bad offset"),
    # random: float results, an int64 0-d seed, a non-negative offset
    ("uniform", ((2,), 0.0, 1.0), "seed", {"dtype": F, "device": CPU, "seed": m((1,), I), "offset": 0}),
    ("uniform", ((2,), 0.0, 1.0), "floating point", {"dtype": I, "device": CPU, "seed": m((), I), "offset": 0}),
    ("normal", ((2,), 0.0, 1.0), "bad offset", {"dtype": F, "device": CPU, "seed": m((), I), "offset": -1}),
    ("normal", ((-2,), 0.0, 1.0), "bad shape", {"dtype": F, "device": CPU, "seed": m((), I), "offset": 0}),
    ("linalg_check_errors", (m((2,)), "linalg.inv"), "int32 info", {"is_matrix": True}),
]


@pytest.mark.parametrize("case", REJECTED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REJECTED)])
def test_meta_rejects(case):
    name, args, match, *kwargs = case
    with pytest.raises(PrimMetaError, match=match):
        PRIMS[name].meta(*args, **(kwargs[0] if kwargs else {}))


@pytest.mark.parametrize("name", TABLE_EXTERNS)
def test_extern_meta_rejects_non_tensors(name):
    """An extern prim's meta rule runs torch's own checks: anything they refuse is a PrimMetaError."""
    with pytest.raises(PrimMetaError, match=f"kiln.{name}"):
        PRIMS[name].meta("not a tensor", object())


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_meta_rejects_non_tensors(name):
    with pytest.raises(PrimMetaError, match="expected a tensor"):
        PRIMS[name].meta(2.0)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_meta_rejects_mismatched_shapes_and_scalars(name):
    dtype = next(d for d in (F, I, B) if _accepts(PRIMS[name], m((2,), d), m((2,), d)))
    with pytest.raises(PrimMetaError, match="shapes must match"):
        PRIMS[name].meta(m((2,), dtype), m((2, 1), dtype))
    with pytest.raises(PrimMetaError, match="at least one tensor"):
        PRIMS[name].meta(1, 1)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_meta_rejects_bad_dims(name):
    with pytest.raises(PrimMetaError, match="bad dims"):
        PRIMS[name].meta(m((2, 3)), (3,))


REJECTION_TESTED = ({r[0] for r in REJECTED} | set(TABLE_EXTERNS) | set(UNARY) | set(BINARY) | set(REDUCTIONS)
                    | {"full", "iota", "empty", "seed"})


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_every_prim_has_meta_and_rejection_tests(name):
    """A new prim must come with a meta-vs-reference check and a bad-input check in this file
    (fallback has no meta rule of its own: the ATen trace supplies it)."""
    if name == "fallback":
        return
    assert name in META_TESTED, f"kiln.{name} has no meta-vs-reference test"
    assert name in REJECTION_TESTED, f"kiln.{name} has no bad-input test"


def test_creation_rejects_bad_sizes():
    with pytest.raises(PrimMetaError, match="bad shape"):
        PRIMS["full"].meta((2, -1), 0.0, dtype=F, device=CPU)
    with pytest.raises(PrimMetaError, match="bad shape"):
        PRIMS["empty"].meta((2, -1), dtype=F, device=CPU)
    with pytest.raises(TypeError):  # seed takes only the device
        PRIMS["seed"].meta((2,), device=CPU)
    with pytest.raises(PrimMetaError, match="bad length"):
        PRIMS["iota"].meta(-1, start=0, step=1, dtype=I, device=CPU)


# --- documentation and naming ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_prim_has_doc_category_and_kiln_name(name):
    prim = PRIMS[name]
    assert isinstance(prim, Prim) and prim.name == name
    assert isinstance(prim.category, Category)
    assert prim.doc.strip() and prim.doc.strip().splitlines()[0].strip()
    assert repr(prim) == f"kiln.{name}" and str(prim) == f"kiln.{name}"
