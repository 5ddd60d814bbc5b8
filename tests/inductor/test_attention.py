"""softmax(q @ k^T * scale) @ v becomes one fused attention call; anything else stays general."""
import math

import pytest
import torch
import torch.fx as fx

from kiln.backend import compile_graph
from kiln.inductor.ir.buffers import ExternBuffer


def _attn(q, k, v):
    return torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1])), -1) @ v


def _heads(x, wq, wk, wv):  # the benchmark's shape of attention: projections, heads, transposes
    q, k, v = ((x @ w).view(2, 16, 4, 8).transpose(1, 2) for w in (wq, wk, wv))
    return _attn(q, k, v).transpose(1, 2).reshape(2, 16, 32)


def _masked(q, k, v):
    s = (q @ k.transpose(-2, -1)) * 0.25
    return torch.softmax(s + torch.triu(torch.full_like(s, -1e4), 1), -1) @ v


g = torch.Generator().manual_seed(0)
CASES = {
    "plain": (_attn, [torch.randn(6, 20, 8, generator=g) for _ in range(3)]),
    "heads": (_heads, [torch.randn(2, 16, 32, generator=g)] + [torch.randn(32, 32, generator=g) / 6 for _ in range(3)]),
}


def _fused(c):
    return [b for b in c.graph.buffers.values() if isinstance(b, ExternBuffer) and repr(b.op) == "scaled_dot_product_attention"]


@pytest.mark.parametrize("name", CASES)
def test_attention_is_one_call_and_matches_eager(name):
    fn, inputs = CASES[name]
    c = compile_graph(fx.symbolic_trace(fn), inputs, target="cpp")
    assert len(_fused(c)) == 1
    assert sum("dropped" in r for r in c.schedule.not_fused) >= 4  # scores, max, exp, sum, probabilities
    torch.testing.assert_close(c.call(*inputs), fn(*inputs))


def test_masked_attention_stays_general():
    inputs = [torch.randn(3, 10, 4, generator=g) for _ in range(3)]
    c = compile_graph(fx.symbolic_trace(_masked), inputs, target="cpp")
    assert not _fused(c)
    torch.testing.assert_close(c.call(*inputs), _masked(*inputs))


def test_probabilities_still_returned_stay_general():
    """The probabilities are computed anyway (returned, or saved for a backward): a fused call would
    repeat the scores and softmax work, so the last matmul stays a matmul of them."""
    def f(q, k, v):
        p = torch.softmax(q @ k.transpose(-2, -1), -1)
        return p @ v, p

    inputs = [torch.randn(2, 12, 4, generator=g) for _ in range(3)]
    c = compile_graph(fx.symbolic_trace(f), inputs, target="cpp")
    assert not _fused(c)
    out, p = c.call(*inputs)
    torch.testing.assert_close(out, f(*inputs)[0])
    torch.testing.assert_close(p, f(*inputs)[1])


def test_training_forward_keeps_its_probabilities_and_fuses_nothing():
    """In a training forward the backward needs softmax's output: no fused call next to it."""
    from kiln import training

    inputs = [torch.randn(6, 20, 8, generator=g, requires_grad=True) for _ in range(3)]
    compiled = training.compile_training(fx.symbolic_trace(_attn), inputs, target="cpp", eager=None)
    assert not _fused(compiled.forward) and not _fused(compiled.backward)
    out = compiled.call(*inputs)
    expected = _attn(*inputs)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), inputs), torch.autograd.grad(expected.sum(), inputs))
