"""Hand-picked edge cases of the decompositions that OpInfo samples rarely reach.

Python scalars (and `alpha`) in type promotion, 0-d tensors next to n-d ones, negative dims,
keepdim, empty tensors, bool/int corner cases. Each case must match eager exactly in dtype and
shape (values exactly for ints/bools) and decompose with no fallback node.
"""
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln import prims
from kiln.prims import PRIMS

_g = torch.Generator().manual_seed(0)
fl = torch.randn(2, 3, generator=_g)
it = torch.randint(-5, 5, (2, 3), generator=_g)
bo = torch.rand(2, 3, generator=_g) > 0.5
f0, i0 = torch.tensor(2.5), torch.tensor(3)
nan = float("nan")

CASES = {
    # Python scalars: promotion by category only, alpha applied to a scalar operand
    "int_plus_float_scalar": (lambda x: x + 2.5, it),
    "bool_plus_int_scalar": (lambda x: x + 1, bo),
    "bool_times_float_scalar": (lambda x: x * 1.5, bo),
    "int_div_int_scalar": (lambda x: x / 2, it),
    "bool_div_bool_scalar": (lambda x: x / True, bo),
    "float_scalar_minus_int": (lambda x: 1.5 - x, it),
    "add_scalar_alpha": (lambda x: torch.add(x, 1, alpha=2.5), fl),
    "add_int_scalar_alpha": (lambda x: torch.add(x, 3, alpha=2), it),
    "sub_float_scalar_alpha_int": (lambda x: torch.sub(x, 1.5, alpha=2), it),
    "rsub_scalar_alpha": (lambda x: torch.rsub(x, 1.5, alpha=2), fl),
    "add_bool_alpha": (lambda x: torch.add(x, True, alpha=True), bo),
    "sub_tensor_alpha": (lambda x: torch.sub(x, x * 3, alpha=2), it),
    "int_eq_float_scalar": (lambda x: x == 1.5, it),
    "bool_lt_float_scalar": (lambda x: x < 0.5, bo),
    "int_pow_2": (lambda x: x ** 2, it),
    "int_pow_half": (lambda x: x.abs() ** 0.5, it),
    "scalar_pow_int": (lambda x: 2 ** x.abs(), it),
    "float_scalar_pow_int": (lambda x: 2.5 ** x, it),
    "where_int_float_scalar": (lambda x: torch.where(x > 0, x, 1.5), it),
    "where_two_scalars": (lambda x: torch.where(x > 0, 1.0, 0), it),
    "where_bool_values": (lambda x: torch.where(x, x, False), bo),
    "clamp_int_float_bounds": (lambda x: torch.clamp(x, 0.5, 2.5), it),
    "clamp_min_float_on_int": (lambda x: torch.clamp_min(x, 1.5), it),
    # 0-d tensors rank below n-d ones of the same category, above them across categories
    "int_plus_float_0d": (lambda x: x + f0, it),
    "float_plus_int_0d": (lambda x: x + i0, fl),
    "float_plus_float64_0d": (lambda x: x + torch.tensor(3.5, dtype=torch.float64), fl),
    "bool_times_int_0d": (lambda x: x * i0, bo),
    "maximum_int_float_0d": (lambda x: torch.maximum(x, torch.tensor(0.5)), it),
    "where_float64_0d": (lambda x: torch.where(x > 0, torch.tensor(1.0, dtype=torch.float64), x), it),
    # 0-d inputs: dim 0 / -1 name the tensor itself
    "sum_0d_neg_keepdim": (lambda x: x.sum(-1, keepdim=True), f0),
    "max_0d_dim": (lambda x: torch.max(x, -1, keepdim=True), f0),
    "argmax_0d": (lambda x: x.argmax(), f0),
    "unfold_0d_size_0": (lambda x: x.unfold(-1, 0, 2), f0),  # fuzzer seeds 3, 386: was shape [1]
    "unfold_0d_size_1": (lambda x: x.unfold(0, 1, 3), f0),
    "argmax_0d_dim_keepdim": (lambda x: x.argmax(0, keepdim=True), f0),
    "softmax_0d": (lambda x: x.softmax(0), f0),
    "transpose_0d": (lambda x: x.transpose(0, -1) + 1, f0),
    "unsqueeze_0d": (lambda x: x.unsqueeze(-1) + 1, f0),
    "expand_0d": (lambda x: x.expand(2, 3) + 1, f0),
    # negative dims, keepdim, dtype= on reductions
    "sum_neg_dims_keepdim": (lambda x: x.sum((-1, 0), keepdim=True), it),
    "sum_int_to_float": (lambda x: x.sum(dtype=torch.float32), it),
    "prod_int_keepdim": (lambda x: x.prod(1, keepdim=True), it),
    "prod_bool": (lambda x: x.prod(), bo),
    "amin_bool_keepdim": (lambda x: x.amin(0, keepdim=True), bo),
    "max_dim_bool": (lambda x: torch.max(x, 1), bo),
    "min_dim_bool_keepdim": (lambda x: torch.min(x, -1, keepdim=True), bo),
    "argmax_keepdim_flat": (lambda x: x.argmax(keepdim=True), fl),
    "argmin_neg_dim": (lambda x: x.argmin(-1), fl),
    "var_mean_neg_dim": (lambda x: torch.var_mean(x, -1), fl),
    "var_correction_too_big": (lambda x: x.var(1, correction=5), fl),
    "mean_dtype": (lambda x: x.mean(1, dtype=torch.float64), fl),
    "log_softmax_int_to_float64": (lambda x: torch.log_softmax(x, -2, dtype=torch.float64), it),
    "select_neg": (lambda x: x.select(-1, -2) + 1, fl),
    "permute_neg": (lambda x: x.permute(-1, 0) + 1, fl),
    # empty tensors
    "sum_empty_dim": (lambda x: x.sum(0), torch.randn(0, 3)),
    "prod_empty": (lambda x: x.prod(), torch.randn(0, 3)),
    "mean_empty": (lambda x: x.mean(), torch.randn(0)),
    "amax_empty_other_dim": (lambda x: x.amax(1), torch.randn(0, 3)),
    "softmax_empty_dim": (lambda x: torch.softmax(x, -1), torch.randn(2, 0)),
    "log_softmax_empty_dim": (lambda x: torch.log_softmax(x, 0), torch.randn(0, 2)),
    "var_mean_empty_dim": (lambda x: torch.var_mean(x, 1), torch.randn(2, 0)),
    "slice_empty": (lambda x: x[:, 2:1] + 1, fl),
    "slice_clamped_bounds": (lambda x: x[:, -100:100:2] + 1, fl),
    # NaN and signed-zero semantics
    "minimum_nan": (lambda x: torch.minimum(x, torch.tensor([nan, 1.0])), torch.tensor([1.0, nan])),
    "amax_nan": (lambda x: x.amax(), torch.tensor([1.0, nan])),
    "argmax_nan": (lambda x: x.argmax(), torch.tensor([1.0, nan, 3.0])),
    "clamp_nan": (lambda x: x.clamp(0, 1), torch.tensor([nan, 2.0])),
    "sign_nan_and_zero": (lambda x: torch.sign(x), torch.tensor([nan, -0.0, 3.0])),
    "round_half_even": (lambda x: torch.round(x), torch.tensor([0.5, 1.5, 2.5, -0.5])),
    "softmax_all_neg_inf": (lambda x: torch.softmax(x, 0), torch.tensor([-float("inf"), -float("inf")])),
    # matrix products with epilogues, creation
    "addmm_alpha_beta_int": (lambda x: torch.addmm(x, x, torch.ones(3, 3, dtype=torch.int64), beta=2, alpha=3), it),
    "addmm_beta0_ignores_nan_bias": (lambda x: torch.addmm(torch.full((2, 4), nan), x, torch.ones(3, 4), beta=0), fl),
    "linear_3d": (lambda x: F.linear(x.view(1, 2, 3), torch.ones(4, 3), torch.arange(4.0)), fl),
    "zeros_like": (lambda x: torch.zeros_like(x) + x, fl),
    "ones_like_dtype": (lambda x: torch.ones_like(x, dtype=torch.float32) + 1, it),
    "full_like_float_into_int": (lambda x: torch.full_like(x, 2.7), it),
    "new_ones": (lambda x: x.new_ones(2) + 1, it),
    "new_full": (lambda x: x.new_full((3,), 7) * x[0], it),
    "to_int_truncates": (lambda x: (x * 3).long(), fl),
}


def _check(fn, x):
    pg = prims.lower(fx.symbolic_trace(fn), [x])
    got, expected = pg(x), fn(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g.dtype, g.shape) == (e.dtype, e.shape)
        exact = not e.dtype.is_floating_point
        torch.testing.assert_close(g, e, equal_nan=True, **({"rtol": 0, "atol": 0} if exact else {}))
    return pg


@pytest.mark.parametrize("name", sorted(CASES))
def test_edge_case_matches_eager(name):
    fn, x = CASES[name]
    pg = _check(fn, x)
    fallbacks = [str(n.args[0]) for n in pg.graph.nodes if n.target is PRIMS["fallback"]]
    assert not fallbacks, fallbacks


def test_inductor_fma_decomposes_for_float32_and_runs_as_is_for_float64():
    """prims.fma exists once torch imports inductor (TorchDynamo does, tracing torch.optim): found by
    schema name, computed in float64 and rounded once more; float64 operands run the op as is."""
    import torch._inductor.inductor_prims  # noqa: F401  (defines prims.fma)
    import torch.fx as fx

    from kiln import prims

    fma = torch.ops.prims.fma.default
    g = fx.Graph()
    a, b, c = (g.placeholder(n) for n in "abc")
    g.output(g.call_function(fma, (a, b, c)))
    gm = fx.GraphModule(torch.nn.Module(), g)
    special = torch.tensor([1.0, -0.0, float("inf"), float("nan"), 3e38, 1e-40, -2.5, 0.1])
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        inputs = [special.to(dtype), special.flip(0).to(dtype), torch.full((8,), 0.3, dtype=dtype)]
        pg = prims.lower(gm, inputs)
        assert bool(prims.fallback_nodes(pg)) == (dtype == torch.float64)
        (got,) = pg(*inputs)
        torch.testing.assert_close(got, fma(*inputs), equal_nan=True)
