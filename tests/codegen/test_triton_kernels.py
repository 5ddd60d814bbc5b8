"""Triton kernels under the interpreter: both reduction forms, argmax/argmin ties and NaNs,
16-bit floats, int64 index math, fusion, and a static check that the code is GPU-legal."""
import ast
import warnings

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
import triton
import triton.language as tl

from cases import CASES
from kiln.codegen.triton import configs
from kiln.codegen.triton import device_math as km
from kiln.codegen.triton.render import needs_int64, render_kernel
from kiln.backend import KilnCompileWarning, compile_graph
from kiln_testing import check, kernels, lower


def _compile(fn, *inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        return compile_graph(fx.symbolic_trace(fn), list(inputs), target="triton")


@pytest.fixture(params=["persistent", "looped"])
def form(request, monkeypatch):
    """Force one reduction form: looped rows walk in steps of 8 lanes, so a row of 40 takes 5 steps."""
    if request.param == "looped":
        monkeypatch.setattr(configs, "PERSISTENT_RBLOCK_MAX", 4)
        monkeypatch.setattr(configs, "LOOPED_RBLOCK", 8)
    return request.param


def _g(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    return torch.randint(-5, 5, shape, generator=g).to(dtype)


REDUCTIONS = [
    ("softmax", lambda x: torch.softmax(x, -1), lambda: [_g(6, 40)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x * 2, (40,), w, b), lambda: [_g(6, 40), _g(40, seed=1), _g(40, seed=2)]),
    ("var_mean_over_dim0", lambda x: (x.var(0), x.mean(0), x.sum(0)), lambda: [_g(40, 6)]),
    ("two_reduced_dims", lambda x: (x.sum((0, 2)), x.amax((0, 2)), x.argmax(1)), lambda: [_g(3, 5, 7)]),
    ("ints_and_bools", lambda a, b: (a.sum(1), a.prod(1), a.amin(1), b.amax(1), b.sum(1)),
     lambda: [_g(6, 40, dtype=torch.int64), _g(6, 40, dtype=torch.bool)]),
    ("int32_and_int8", lambda a, b: (a.sum(1), a.amax(1), b.amin(1), b.argmax(1)),
     lambda: [_g(6, 40, dtype=torch.int32), _g(6, 40, dtype=torch.int8)]),
    ("full_reduction_and_epilogue", lambda x: (x - x.mean()) * x.std(), lambda: [_g(7, 9)]),
]


@pytest.mark.parametrize("name,fn,make", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_forms_match_eager(name, fn, make, form):
    inputs = make()
    compiled = _compile(fn, *inputs)
    src = compiled.backend.source
    assert f"# {form} reduction" in src
    assert ("for roffset in range(0, rnumel, RBLOCK):" in src) == (form == "looped")
    check(compiled.call, fn, *inputs)


def _ties_and_nans():
    x = torch.tensor([
        [1.0, 3.0, 3.0, 2.0, 3.0, 0.0, 3.0, 1.0, 3.0, 3.0],  # max tied at 1, 2, 4, 6, 8, 9
        [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0],  # all equal: index 0
        [0.0, 5.0, float("nan"), 7.0, float("nan"), -2.0, -2.0, 0.0, 1.0, 1.0],  # first NaN wins both
        [float("-inf")] * 9 + [float("inf")],
        [float("-inf")] * 10,  # all -inf: argmax 0 (masked lanes must never win)
        [float("inf")] * 10,  # all inf: argmin 0
        [2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0],  # ties in different lanes and steps
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float("nan")],  # NaN last
    ])
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float16])
def test_argmax_argmin_ties_and_nans(dtype, form):
    x = _ties_and_nans()
    if not dtype.is_floating_point:
        x = torch.nan_to_num(x, nan=9, posinf=8, neginf=-8).to(dtype)
    x = x.to(dtype)

    def fn(x):
        return x.argmax(1), x.argmin(1), x.argmax(0), x.argmin(0), x.t().argmax(0), x.argmax()

    check(_compile(fn, x).call, fn, x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_floats_accumulate_in_float32(dtype, form):
    x, y = _g(6, 40, dtype=dtype), _g(6, 40, dtype=dtype, seed=3)
    x[1, 3] = float("nan")

    def fn(x, y):
        return (torch.softmax(x, -1), x.sum(1), x.amax(1), x.argmin(1), (x * y).sin(), x.var(1), x > y,
                torch.where(x > 0, x, y), F.layer_norm(y, (40,)), x.to(torch.int32), y.to(torch.bool),
                y.to(torch.float16 if dtype == torch.bfloat16 else torch.bfloat16))

    check(_compile(fn, x, y).call, fn, x, y)


def test_int64_index_math_when_an_index_can_reach_2_31():
    big = torch.empty(1, 1).expand(1 << 16, 1 << 16)  # 2**32 elements of one storage element
    _, schedule = lower(lambda x: (x * 2).sum(1), big)
    (kernel,) = kernels(schedule)
    assert needs_int64(kernel)
    src = render_kernel(kernel)
    assert "tl.program_id(0).to(tl.int64)" in src and ".to(tl.int64)" in src.split("rindex = ")[1].splitlines()[0]
    _, schedule = lower(lambda x: (x * 2).sum(1), torch.empty(64, 64))
    assert not needs_int64(kernels(schedule)[0])


@pytest.mark.parametrize("case", ["softmax_long_rows", "views", "reductions_with_nan", "int_ops"])
def test_int64_index_math_computes_the_same(case, monkeypatch):
    monkeypatch.setattr(configs, "INT32_LIMIT", 16)  # every kernel takes the int64 path
    _, fn, makers = next(c for c in CASES if c[0] == case)
    inputs = [m() for m in makers]
    compiled = _compile(fn, *inputs)
    assert "tl.program_id(0).to(tl.int64)" in compiled.backend.source
    check(compiled.call, fn, *inputs)


def test_softmax_is_one_kernel_that_loads_each_row_once():
    x = _g(6, 40)
    compiled = _compile(lambda x: torch.softmax(x, -1), x)
    (kernel,) = compiled.kernels
    assert compiled.backend.source.count("tl.load(") == 1
    assert compiled.backend.source.count("tl.store(") == 1
    check(compiled.call, lambda x: torch.softmax(x, -1), x)


def test_matmul_epilogue_and_layer_norm_fuse():
    x, w, b = _g(8, 16), _g(16, 32, seed=1), _g(32, seed=2)

    def fn(x, w, b):
        return F.layer_norm(F.gelu(x @ w + b), (32,))

    compiled = _compile(fn, x, w, b)
    assert len(compiled.kernels) == 1 and "torch.matmul(" in compiled.wrapper_source
    check(compiled.call, fn, x, w, b)


# -- GPU legality, checked statically on every thin-path case: the interpreter would accept more --

def _violations(source: str) -> list[str]:
    tree = ast.parse(source)
    bad = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Break, ast.Continue, ast.Return, ast.BoolOp)):
                bad.append(f"{fn.name}: {type(node).__name__} (Python control flow on values)")
            if isinstance(node, ast.For) and ast.unparse(node.iter) != "range(0, rnumel, RBLOCK)":
                bad.append(f"{fn.name}: loop over {ast.unparse(node.iter)}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("tl.load", "tl.store"):
                if len(node.args) < (2 if ast.unparse(node.func) == "tl.load" else 3):
                    bad.append(f"{fn.name}: unmasked {ast.unparse(node)}")
        blocks = [a for a in fn.args.args if a.arg.endswith("BLOCK")]
        if not blocks or any(ast.unparse(a.annotation) != "tl.constexpr" for a in blocks):
            bad.append(f"{fn.name}: block sizes must be tl.constexpr")
    return bad


@pytest.mark.parametrize("looped", [False, True], ids=["persistent", "looped"])
def test_generated_kernels_are_gpu_legal(looped, monkeypatch):
    if looped:
        monkeypatch.setattr(configs, "PERSISTENT_RBLOCK_MAX", 1)
    for name, fn, makers in CASES:
        _, schedule = lower(fn, *[m() for m in makers])
        for k in kernels(schedule):
            assert _violations(render_kernel(k)) == [], name


# -- device functions for reduction types other branches add (ANY, WELFORD; see ops._LATER) -------

@triton.jit
def _welford_and_any_rows(p_x, p_m2, p_any, rnumel, LANES: tl.constexpr):
    row = tl.program_id(0)
    lanes = tl.arange(0, LANES)[None, :]
    mean = tl.full([1, LANES], 0, tl.float32)
    m2 = tl.full([1, LANES], 0, tl.float32)
    n = tl.full([1, LANES], 0, tl.float32)
    hit = tl.full([1, LANES], 0, tl.int1)
    for off in range(0, rnumel, LANES):  # the looped form: lane-wise updates, then one row merge
        idx = off + lanes
        m = idx < rnumel
        x = tl.load(p_x + row * rnumel + idx, m, other=0)
        mean2, m22, n2 = km.welford_combine(mean, m2, n, x, tl.full([1], 0, tl.float32), tl.full([1], 1, tl.float32))
        mean, m2, n = tl.where(m, mean2, mean), tl.where(m, m22, m2), tl.where(m, n2, n)
        hit = tl.where(m, km.or_combine(hit, x > 2.0), hit)
    tl.store(p_m2 + row + tl.arange(0, 1), km.row_welford_m2(mean, m2, n))
    tl.store(p_any + row + tl.arange(0, 1), km.row_max(hit))


def test_welford_lanes_and_any_reduce_rows_like_eager():
    x = torch.randn(5, 37, generator=torch.Generator().manual_seed(0))
    x[1] = 3.0  # constant row: m2 exactly 0
    x[2] = 1e3 + x[2] * 0.1  # a large mean: one-pass sums of squares (E[x^2] - E[x]^2) would lose it all
    x[3, 36] = 2.5  # the only hit, in the last, partial step
    m2, hit = torch.empty(5), torch.empty(5, dtype=torch.bool)
    _welford_and_any_rows[(5,)](x, m2, hit, 37, LANES=8)
    exact = ((x.double() - x.double().mean(1, keepdim=True)) ** 2).sum(1)
    torch.testing.assert_close(m2.double(), exact, rtol=2e-4, atol=1e-6)  # float32 updates around a mean of 1e3
    assert m2[1] == 0
    assert torch.equal(hit, (x > 2.0).any(1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pow_is_exact_for_integer_exponents_and_keeps_special_cases(dtype):
    k = torch.arange(-22, 23, dtype=dtype)
    x = torch.cat([torch.full_like(k, 10.0), torch.tensor([2.0, -2.0, -2.0, 0.0, 0.0, float("inf"), float("nan"), -1.5,
                                                           1.1, 3.0], dtype=dtype)])
    y = torch.cat([k, torch.tensor([127.0, 3.0, -3.0, -1.0, 0.0, -2.0, 0.0, 2.5, 100.0, 0.5], dtype=dtype)])
    compiled = _compile(lambda x, y: torch.pow(x, y), x, y)
    got, expected = compiled.call(x, y), torch.pow(x, y)
    assert torch.equal(got[22:45], expected[22:45])  # 10.0 ** k, k >= 0, exactly (logspace to ints relies on it)
    torch.testing.assert_close(got, expected, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8, torch.float32])
def test_division_and_remainder_sign_rules_and_conversions(dtype):
    a = torch.tensor([7, -7, 7, -7, 0, 5, -5, 100, -100, 3], dtype=dtype)
    b = torch.tensor([2, 2, -2, -2, 3, 5, 3, -7, 7, 1], dtype=dtype)

    def fn(a, b):
        return (torch.div(a, b, rounding_mode="trunc"), torch.div(a, b, rounding_mode="floor"), a // b,
                torch.remainder(a, b), torch.fmod(a, b), a / b, a.to(torch.bool), (a > 0).to(dtype),
                a.to(torch.float16), a.to(torch.bfloat16), (a * 3).to(torch.int8))

    check(_compile(fn, a, b).call, fn, a, b)


def test_float_to_bool_and_int_conversions_as_eager():
    x = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -2.7, 2.7, 0.5, -0.5, 1e-30, 300.0])
    fn = lambda x: (x.to(torch.bool), x.clamp(-100, 100).to(torch.int64), x.clamp(-100, 100).to(torch.int32),  # noqa: E731
                    x.to(torch.bool).to(torch.float32), x.to(torch.float64), x.to(torch.bfloat16))
    check(_compile(fn, x).call, fn, x)
