"""var/std through both code generators: no overflow where eager has none.

Eager's CPU var/std accumulate in double, even for float32 and 16-bit inputs, so the squared
deviations of values near 1e30 (1e60, past float32's range) do not overflow and std, their root,
is finite. Kiln accumulates in the same dtype (prims/decomp/reductions.py `_var_acc`), in both
the two-pass and the one-pass (Welford) forms.
"""
import math

import pytest
import torch
import torch.fx as fx

from kiln.backend import compile_graph
from kiln.inductor.ir.loop import ReductionType
from kiln_testing import check

TARGETS = ["cpp", "triton"]
INF, NAN = math.inf, math.nan


def _compile(fn, inputs, target):
    return compile_graph(fx.symbolic_trace(fn), [t.clone() for t in inputs], target=target)


def std0(x):
    return x.std(0)


def var_std_mean_rows(x):
    v, m = torch.var_mean(x, -1)
    s, m0 = torch.std_mean(x, -1, correction=0)
    return v, m, s, m0, x.std(-1, keepdim=True)


def var_std_rows(x):  # var_mean's mean of a row holding inf is NaN or inf in eager, by the inf's position
    return x.var(-1), x.std(-1, correction=0), x.var(-1, correction=2)


def std_all(x):
    return x.std(), x.var(correction=0)


BIG = torch.tensor([[1e30], [0.0], [0.0]])  # the reported input: eager's std is 5.77e29
CASES = [
    ("reported", std0, BIG),
    ("big_columns", std0, torch.tensor([[1e30, -3e38, 1e20], [0.0, 3e38, -1e20], [2e29, 1.0, 0.0]])),
    ("big_rows", var_std_mean_rows, torch.tensor([[1e30, 0.0, 0.0, -1e30], [3e38, -3e38, 1e-45, -0.0]])),
    ("big_all", std_all, torch.tensor([1e35, -1e35, 3.0, 2e34])),
    ("specials", var_std_rows, torch.tensor([[INF, 1.0, 2.0], [NAN, 0.0, 1.0], [-INF, INF, 0.0], [-0.0, -0.0, 0.0],
                                                  [1e-45, -1e-45, 0.0]])),
    ("one_element", std_all, torch.tensor([1e30])),  # correction 1 over one element: nan, as eager
    ("zero_size", std_all, torch.zeros(0)),
    ("zero_dim", std_all, torch.tensor(3e37)),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,fn,x", CASES, ids=[c[0] for c in CASES])
def test_no_overflow_where_eager_has_none(name, fn, x, target):
    check(_compile(fn, [x], target).call, fn, x)


@pytest.mark.parametrize("target", TARGETS)
def test_the_reported_row(target):
    got = _compile(std0, [BIG], target).call(BIG)
    assert math.isfinite(got.item()) and abs(got.item() - 5.7735e29) < 1e26


def test_one_pass_welford_form_does_not_overflow():
    """Long rows take the one-pass Welford reduction (inductor/lowering/reductions.py); it
    accumulates in eager's dtype too."""
    x = torch.zeros(4, 1 << 16)
    x[:, 7] = 1e30
    x[1, 100] = -3e38
    compiled = _compile(lambda x: x.std(-1), [x], "cpp")
    assert any(n.reduction and n.buffer.data.reduction_type is ReductionType.WELFORD
               for k in compiled.kernels for n in k.nodes)
    check(compiled.call, lambda x: x.std(-1), x)
