"""Reductions over zero-size inputs, expanded or not, through the C++ build and Triton (interpreter).

A reduction over no elements gives its identity (0, 1, False, NaN for mean/var, -inf for
logsumexp) and reads nothing. A value that does not vary along the row is hoisted out of the
row loop; out of a loop that runs zero times, that read would run on an empty (null) buffer: it
killed the process under Triton's interpreter (fuzzer finding F7). Neither backend hoists out of
an empty loop.
"""
import warnings

import pytest
import torch
import torch.fx as fx

from kiln.backend import KilnCompileWarning, compile_fx, compile_graph
from kiln_testing import check

TARGETS = ["cpp", "triton"]


def _dims(d):
    return tuple(range(3)) if d is None else d


# (name, fn(x, dim, keepdim)): dim is None (all dims), an int or a tuple
FLOAT_REDUCTIONS = [
    ("sum", lambda x, d, k: x.sum(_dims(d), keepdim=k)),
    ("nansum", lambda x, d, k: x.nansum(_dims(d), keepdim=k)),
    ("mean", lambda x, d, k: x.mean(_dims(d), keepdim=k)),
    ("prod", lambda x, d, k: x.prod(d, keepdim=k) if isinstance(d, int) else x.prod()),
    ("var", lambda x, d, k: x.var(_dims(d), keepdim=k)),
    ("std", lambda x, d, k: x.std(_dims(d), correction=0, keepdim=k)),
    ("norm2", lambda x, d, k: torch.linalg.vector_norm(x, 2, d, k)),
    ("norm1", lambda x, d, k: torch.linalg.vector_norm(x, 1, d, k)),
    ("norm3", lambda x, d, k: torch.linalg.vector_norm(x, 3, d, k)),
    ("norm0", lambda x, d, k: torch.linalg.vector_norm(x, 0, d, k)),
    ("logsumexp", lambda x, d, k: torch.logsumexp(x, _dims(d), k)),
    ("any", lambda x, d, k: x.any(_dims(d), keepdim=k)),
    ("all", lambda x, d, k: x.all(_dims(d), keepdim=k)),
    ("count_nonzero", lambda x, d, k: torch.count_nonzero(x, _dims(d))),
    ("softmax", lambda x, d, k: x.softmax(d if isinstance(d, int) else 1)),
]
INT_REDUCTIONS = [r for r in FLOAT_REDUCTIONS if r[0] in ("sum", "prod", "any", "all", "count_nonzero")]
# eager raises on these over a zero-size reduced dim: Kiln must raise the same
RAISING = [
    ("amax", lambda x, d, k: x.amax(_dims(d), keepdim=k)),
    ("argmax", lambda x, d, k: x.argmax(d if isinstance(d, int) else None, keepdim=k)),
    ("norm_inf", lambda x, d, k: torch.linalg.vector_norm(x, float("inf"), d, k)),
    ("aminmax", lambda x, d, k: torch.aminmax(x, dim=d if isinstance(d, int) else None, keepdim=k)),
]


def _base(*shape, dtype=torch.float32):
    return torch.arange(1, 1 + torch.Size(shape).numel()).reshape(shape).to(dtype)


# name -> a 3-d input with a size-0 dim 1: plain, permuted, an expanded empty tensor (every
# stride 0 or across an empty dim), and a non-empty tensor expanded to size 0
INPUTS = {
    "plain": lambda dt: _base(2, 0, 3, dtype=dt),
    "permuted": lambda dt: _base(3, 0, 2, dtype=dt).permute(2, 1, 0),
    "expanded_empty": lambda dt: _base(0, 1, dtype=dt).expand(2, 0, 3),
    "expanded_to_zero": lambda dt: _base(2, 1, 3, dtype=dt).expand(2, 0, 3),
}
DIMS = [(None, False), (None, True), (1, False), (1, True), (0, False), ((0, 1), True), ((1, 2), False)]


def _fused(reductions, d, k):
    def fn(x):
        return tuple(f(x, d, k) for _, f in reductions)
    return fn


def _compile(fn, inputs, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        return compile_graph(fx.symbolic_trace(fn), list(inputs), target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dim, keepdim", DIMS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", list(INPUTS))
def test_reductions_over_zero_size_inputs(kind, dim, keepdim, target):
    for dtype, reductions in ((torch.float32, FLOAT_REDUCTIONS), (torch.int64, INT_REDUCTIONS)):
        x = INPUTS[kind](dtype)
        fn = _fused(reductions, dim, keepdim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # eager's "degrees of freedom is <= 0"
            check(_compile(fn, [x], target).call, fn, x)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzzer_f7_vector_norm_of_an_expanded_empty_tensor(target):
    x = torch.tensor([], dtype=torch.float32).reshape(0, 1)

    def fn(x0):
        return (torch.linalg.vector_norm(x0.expand((2, 2, 8, 3, 0, 2)), ord=2, dim=None, keepdim=True),)

    check(_compile(fn, [x], target).call, fn, x)


@pytest.mark.parametrize("target", TARGETS)
def test_an_empty_row_reduction_fused_with_reads_of_the_same_element(target):
    """The row-invariant read `x[i, 0]` of the empty reduction is also read at x level: kept
    inside the empty loop, it must not hide the x-level read (that one is valid)."""
    x = _base(3, 1)

    def fn(x):
        y = x.expand(3, 0)
        return y.sum(1, keepdim=True) + x, (y * 2).amax(0), y.exp()

    check(_compile(fn, [x], target).call, fn, x)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name, f", RAISING, ids=[r[0] for r in RAISING])
def test_reductions_that_eager_refuses_on_zero_size_raise_eagers_error(name, f, target, monkeypatch):
    from kiln import config

    monkeypatch.setattr(config, "strict", True)  # a Kiln failure raises instead of falling back
    for kind in ("plain", "expanded_empty"):
        x = INPUTS[kind](torch.float32)
        fn = _fused([(name, f)], 1, False)
        with pytest.raises(Exception) as eager:
            fn(x)
        with pytest.raises(Exception) as got:
            compile_fx(fx.symbolic_trace(fn), [x], target=target)(x)
        assert type(got.value) is type(eager.value), (got.value, eager.value)
