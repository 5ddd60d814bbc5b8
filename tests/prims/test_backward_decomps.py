"""Backward ATen ops (prims/decomp/backward.py) decomposed to prims against eager, special values
included; inputs the decompositions leave alone run as they are."""
import math

import pytest
import torch
import torch.fx as fx

from kiln import prims

aten = torch.ops.aten
SPECIAL = [0.0, -0.0, 1.0, -1.5, 2.5, math.inf, -math.inf, math.nan, 3.0e38, -3.0e38, 1e-40, 0.5]


def _special(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    flat = x.view(-1)
    for i, v in enumerate(SPECIAL[: flat.numel()]):
        flat[(i * 7) % flat.numel()] = v
    return x.to(dtype)


def _lower(op, inputs, consts):
    g = fx.Graph()
    ph = [g.placeholder(f"x{i}") for i in range(len(inputs))]
    g.output(g.call_function(op, (*ph, *consts)))
    return prims.lower(fx.GraphModule(torch.nn.Module(), g), inputs)


def check(op, inputs, consts=(), decomposed=True):
    pg = _lower(op, inputs, consts)
    assert bool(prims.fallback_nodes(pg)) != decomposed
    got, expected = pg(*inputs), op(*inputs, *consts)
    got = got if isinstance(got, (tuple, list)) else (got,)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    for a, b in zip(got, expected):
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        # 16-bit: float math rounded once, as eager; its vectorised exp and sum order differ, which a
        # norm's cancelling terms can turn into a few ulps of the result
        tol = {torch.float16: dict(rtol=4e-3, atol=1e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2)}.get(b.dtype, {})
        torch.testing.assert_close(a, b, equal_nan=True, **tol)


DTYPES = [torch.float32, torch.float16, torch.bfloat16]
UNARY = {
    "tanh": (aten.tanh_backward.default, lambda x: x.tanh()),
    "sigmoid": (aten.sigmoid_backward.default, lambda x: x.sigmoid()),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_output_based_elementwise(name, dtype):
    op, fwd = UNARY[name]
    x = _special((4, 6), dtype)
    check(op, [_special((4, 6), dtype, seed=1), fwd(x)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_based_elementwise(dtype):
    g, x = _special((5, 3), dtype, 1), _special((5, 3), dtype)
    check(aten.threshold_backward.default, [g, x], (0.0,))
    check(aten.threshold_backward.default, [g, x], (0.5,))
    check(aten.silu_backward.default, [g, x])
    check(aten.gelu_backward.default, [g, x])
    check(lambda g, x: aten.gelu_backward.default(g, x, approximate="tanh"), [g, x])


def test_zero_dim_and_complex():
    check(aten.tanh_backward.default, [torch.tensor(2.0), torch.tensor(0.3)])
    check(aten.threshold_backward.default, [torch.tensor(-0.0), torch.tensor(0.0)], (0.0,))
    c = torch.randn(3, dtype=torch.complex64)
    check(aten.tanh_backward.default, [c, c.tanh()], decomposed=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_backwards(dtype, dim):
    x = _special((4, 5), torch.float32).clamp(-20, 20).to(dtype)
    g = _special((4, 5), dtype, 1).clamp(-1e3, 1e3)
    check(aten._softmax_backward_data.default, [g, x.softmax(dim)], (dim, dtype))
    check(aten._log_softmax_backward_data.default, [g, x.log_softmax(dim)], (dim, dtype))


@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_mse_loss_backward(reduction):
    torch.manual_seed(0)
    x, t = _special((3, 4)), torch.randn(3, 4)
    g = torch.randn(3, 4) if reduction == 0 else torch.tensor(1.5)
    check(aten.mse_loss_backward.default, [g, x, t], (reduction,))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_backward(affine, dtype):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5).to(dtype)
    w, b = (torch.randn(4, 5).to(dtype), torch.randn(4, 5).to(dtype)) if affine else (None, None)
    _, mean, rstd = aten.native_layer_norm.default(x, [4, 5], w, b, 1e-5)
    g = torch.randn(3, 4, 5).to(dtype)
    inputs = [g, x, mean, rstd] + ([w, b] if affine else [])
    pg_op = (lambda g, x, m, r, w, b: aten.native_layer_norm_backward.default(g, x, [4, 5], m, r, w, b,
                                                                                [True, True, True])) \
        if affine else (lambda g, x, m, r: aten.native_layer_norm_backward.default(g, x, [4, 5], m, r, None, None,
                                                                                     [True, False, False]))
    check(pg_op, inputs)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_backward(train):
    torch.manual_seed(0)
    x, w = torch.randn(4, 3, 5), torch.randn(3)
    rm, rv = torch.randn(3), torch.rand(3) + 0.5
    _, save_mean, save_invstd = aten.native_batch_norm.default(x, w, None, rm.clone(), rv.clone(), train, 0.1, 1e-5)
    g = torch.randn(4, 3, 5)
    check(lambda g, x, w, rm, rv, sm, si: aten.native_batch_norm_backward.default(
        g, x, w, rm, rv, sm, si, train, 1e-5, [True, True, True]), [g, x, w, rm, rv, save_mean, save_invstd])


@pytest.mark.parametrize("reduction", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_backward(reduction, weighted):
    torch.manual_seed(0)
    x = torch.randn(5, 4).log_softmax(-1)
    t = torch.tensor([0, 3, -100, 1, 3])
    w = torch.tensor([1.0, 0.5, 2.0, -1.0]) if weighted else None
    _, total = aten.nll_loss_forward.default(x, t, w, reduction, -100)
    g = torch.randn(5) if reduction == 0 else torch.tensor(1.5)
    if weighted:
        check(lambda g, x, t, w, tw: aten.nll_loss_backward.default(g, x, t, w, reduction, -100, tw),
              [g, x, t, w, total])
    else:
        check(lambda g, x, t, tw: aten.nll_loss_backward.default(g, x, t, None, reduction, -100, tw), [g, x, t, total])
    x1, t1 = x[0], torch.tensor(2)  # one sample: 1-D input, 0-dim target
    _, total = aten.nll_loss_forward.default(x1, t1, None, 1, -100)
    check(lambda g, x, t, tw: aten.nll_loss_backward.default(g, x, t, None, 1, -100, tw),
          [torch.tensor(0.7), x1, t1, total])
    zero = torch.tensor(0.0)  # every target ignored: a mean divides by zero, as eager
    check(lambda g, x, t, tw: aten.nll_loss_backward.default(g, x, t, None, 1, -100, tw),
          [torch.tensor(1.0), x, torch.full((5,), -100), zero])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64])
@pytest.mark.parametrize("sizes,dim,index", [((3, 2, 4), 0, 1), ((3, 2, 4), -1, -1), ((5,), 0, 4), ((2, 0, 3), 2, 0),
                                             ((1, 3), 0, 0)])
def test_select_backward(sizes, dim, index, dtype):
    """The gradient of `x.select(dim, index)` (q, k, v = qkv unpacking): grad in zeros of the input's shape."""
    grad_shape = sizes[:dim % len(sizes)] + sizes[dim % len(sizes) + 1:]
    grad = _special(grad_shape, dtype) if dtype.is_floating_point else torch.arange(math.prod(grad_shape)).view(grad_shape) - 3
    check(aten.select_backward.default, [grad], (list(sizes), dim, index))
