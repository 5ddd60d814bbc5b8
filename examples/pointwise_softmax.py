"""The thin path in one function: pointwise ops, operators and reductions, fused by Kiln.

    kiln dump examples/pointwise_softmax.py -o /tmp/kiln_dump            # C++ kernels
    kiln dump examples/pointwise_softmax.py --target triton -o /tmp/kt  # Triton kernels
"""
import torch

import kiln


@kiln.compile
def f(x, y):
    a = torch.sin(x) * 2.0 + y
    b = a.relu() - x / 3
    return torch.softmax(b, dim=-1), b.sum(dim=1, keepdim=True), a.mean()


if __name__ == "__main__":
    x, y = torch.randn(8, 32), torch.randn(8, 32)
    for got, expected in zip(f(x, y), f.__wrapped__(x, y)):
        torch.testing.assert_close(got, expected)
    print("pointwise_softmax: compiled result matches eager")
