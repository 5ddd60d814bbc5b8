"""A small model-like function: a GELU MLP block with a residual, layer_norm and a softmax head.

Run it plain (`python examples/mlp_block.py`) or see every stage Kiln produces for it:
    kiln dump examples/mlp_block.py -o /tmp/kiln_dump
"""
import torch
import torch.nn.functional as F

import kiln


def mlp_block(x, w1, b1, w2, b2, gamma, beta):
    h = F.gelu(x @ w1 + b1)
    y = h @ w2 + b2 + x
    y = F.layer_norm(y, (y.shape[-1],), gamma, beta)
    return y, torch.softmax(y * 0.5, dim=-1)


def make_inputs(batch=64, d=256, hidden=1024, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d, generator=g)
    w1 = torch.randn(d, hidden, generator=g) / d ** 0.5
    b1 = torch.randn(hidden, generator=g) * 0.1
    w2 = torch.randn(hidden, d, generator=g) / hidden ** 0.5
    b2 = torch.randn(d, generator=g) * 0.1
    return x, w1, b1, w2, b2, torch.ones(d), torch.zeros(d)


if __name__ == "__main__":
    inputs = make_inputs()
    compiled = kiln.compile(mlp_block)
    with torch.no_grad():
        got, expected = compiled(*inputs), mlp_block(*inputs)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    print("mlp_block: compiled result matches eager")
