"""A function with three graph breaks: a data-dependent `if`, a call into a helper that
prints, and `.item()`. `python examples/graph_breaks.py` prints what kiln.explain says."""
import torch

import kiln


def log_shape(t):
    print("shape:", tuple(t.shape))
    return t * 2


def f(x):
    y = torch.sin(x) + 1
    if y.sum() > 0:        # data-dependent branch: both sides become resume functions
        y = y * 2
    z = log_shape(y) + x   # print inside a helper: breaks at this call, the helper compiles alone
    return z * z.mean().item()


if __name__ == "__main__":
    x = torch.randn(8)
    print(kiln.explain(f)(x))
    torch.testing.assert_close(kiln.compile(f)(x), f(x))
