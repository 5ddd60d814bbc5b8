"""prims/decomp/activation_grads.py: leaky_relu and hardsigmoid backward compiled in a training graph
give eager's gradients on special values (inf, nan, -0.0, the branch points, tiny and huge values),
placed both in eager's vectorized body and in its scalar tail, in float32, bfloat16 and float16."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import kiln

SPECIAL = [float("inf"), -float("inf"), float("nan"), -0.0, 0.0, -3.0, 3.0, -1.0, 1.0, 1e-30, -1e-30, 1e4, -1e4]
ACTIVATIONS = {"leaky_relu": lambda x: F.leaky_relu(x, 0.2), "hardsigmoid": F.hardsigmoid}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_gradient_on_special_values(name, dtype, monkeypatch):
    monkeypatch.setattr(kiln.config, "strict", "ops")  # no op-level fallback either
    fn = ACTIVATIONS[name]
    g = torch.Generator().manual_seed(0)
    special = torch.tensor(SPECIAL)
    x = torch.cat([special, torch.randn(40, generator=g) * 4, special]).to(dtype)  # body and tail
    grad = torch.randn(x.shape, generator=g).to(dtype)
    compiled = kiln.compile(lambda t: fn(t))
    xe, xk = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, = torch.autograd.grad(fn(xe), xe, grad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, = torch.autograd.grad(compiled(xk), xk, grad)
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=0, atol=0)
