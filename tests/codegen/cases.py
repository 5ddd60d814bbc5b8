"""Thin-path functions run through every backend: (name, fn, input factory). Shapes stay small
enough for Triton's interpreter, but rows longer than one Triton block appear too."""
import torch
import torch.nn.functional as F


def _f(*shape, dtype=torch.float32, nan=False, seed=0):
    def make():
        g = torch.Generator().manual_seed(seed + len(shape))
        if dtype.is_floating_point:
            x = torch.randn(shape, generator=g, dtype=dtype)
            if nan and x.numel() > 3:
                x.view(-1)[3] = float("nan")
            return x
        if dtype == torch.bool:
            return torch.randint(0, 2, shape, generator=g).bool()
        return torch.randint(-50, 50, shape, generator=g, dtype=dtype)

    return make


CASES = [
    ("pointwise_chain", lambda x, y: ((x * y).sin() + 1).relu() / (y.abs() + 1) - torch.tanh(x) ** 2,
     [_f(17, 33), _f(17, 33, seed=1)]),
    ("unary_math", lambda x: (x.exp(), x.abs().log1p(), x.expm1(), x.cos(), x.tan(), x.erf(), x.floor(),
                              x.ceil(), x.trunc(), x.round(), x.sign(), x.sigmoid(), F.silu(x), F.gelu(x),
                              F.gelu(x, approximate="tanh"), x.abs().sqrt(), x.abs().add(1).rsqrt()),
     [_f(5, 7)]),
    ("broadcast_and_scalars", lambda x, b: (x + b) * 0.5 - 3 / (b.abs() + 2) + (x > 0), [_f(6, 1, 9), _f(9)]),
    ("int_ops", lambda a, b: (a + b, a * 3 - b, torch.maximum(a, b), a > b, torch.where(a > 0, a, b), a.abs(),
                              a.sum(1), a.amax(0), a.argmin(1), a // 1 if False else a.neg()),
     [_f(6, 10, dtype=torch.int64), _f(6, 10, dtype=torch.int64, seed=3)]),
    ("bool_ops", lambda a, b: (a & b if False else torch.logical_and(a, b), torch.logical_or(a, ~b if False else b),
                               torch.logical_not(a), a.sum(), a.any() if False else a.amax()),
     [_f(4, 9, dtype=torch.bool), _f(4, 9, dtype=torch.bool, seed=5)]),
    ("reductions_with_nan", lambda x: (x.sum(1), x.amax(1), x.amin(0), x.argmax(1), x.argmin(0), x.prod(1),
                                       x.mean(), x.var(1), x.std(0)),
     [_f(7, 40, nan=True)]),
    # few long rows: C++ splits each row across threads and combines per-thread partials
    ("split_rows", lambda x: (x.sum(1), x.amax(1), x.argmin(1), x.var(1), x.sum(), x.argmax(), torch.softmax(x, 1)),
     [_f(3, 14000, nan=True)]),
    # rows across memory: C++ runs blocks of neighbouring columns with one vector lane each
    # (sums of |x| + 1: no cancellation, so float32's rounding stays within the default tolerance)
    ("column_reductions", lambda x: ((x.abs() + 1).sum(0), x.amax(0), x.argmin(0), x.var(0),
                                     (x.abs() * 2 + 1).mean(0) + x[3], (x.abs() + 1).permute(1, 0, 2).sum((1,))),
     [_f(300, 70, 3, nan=True)]),
    ("full_and_strided_var", lambda x: (x.var(), x.var(0), x.std(0), torch.var_mean(x, 0)[0], torch.var_mean(x, 0)[1], x.mean()),
     [_f(60, 700)]),
    ("softmax_long_rows", lambda x: (torch.softmax(x, -1), torch.log_softmax(x, 1)), [_f(3, 1500)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (48,), w, b), [_f(10, 48), _f(48, seed=2), _f(48, seed=3)]),
    ("views", lambda x: (x.t()[1:5] * 2, x.permute(1, 0).reshape(-1, 3) + 1, x.unsqueeze(0).expand(2, 6, 12).sum(0),
                         x[:, ::2].exp(), x.view(3, 2, 12).transpose(0, 2).contiguous()),
     [_f(6, 12)]),
    ("non_contiguous_input", lambda x: (x * 2).sum(0), [lambda: torch.randn(9, 14).t()[2:]]),
    ("matmul_epilogue", lambda x, w, b: torch.relu(x @ w + b).amax(1), [_f(8, 16), _f(16, 12), _f(12)]),
    ("bmm", lambda a, b: torch.softmax(a @ b, -1), [_f(2, 5, 8), _f(2, 8, 6)]),
    ("float64", lambda x: (x.sin() * x.cos()).sum(1), [_f(5, 9, dtype=torch.float64)]),
    ("zero_dim_and_empty", lambda x, e: (x * 2 + 1, e.sum(0), e + 1), [_f(), lambda: torch.randn(0, 4)]),
    ("fallback_op", lambda x: torch.fake_quantize_per_tensor_affine(x, 0.1, 0, 0, 255) * 2, [_f(4, 6)]),
    ("extern_ops", lambda x: (torch.cumsum(x, 1) * 2, torch.sort(x, 1)[0] + torch.sort(x, 1)[1]), [_f(4, 6)]),
    ("returns_input", lambda x, y: (x, x + y, y), [_f(3, 3), _f(3, 3, seed=9)]),
]

IDS = [c[0] for c in CASES]
