"""Random ATen ops -> the uniform/normal prims with an explicit seed and offset (prims/ops/random.py).

Each draw in a graph takes the graph's one `seed` node and its own offset (the running count of
numbers drawn before it), so no two draws of one run overlap."""
from __future__ import annotations

import math

import torch

from ..builder import current_builder, is_tensor_like
from ..meta import numel
from .promote import P, broadcast_shapes, broadcast_to, convert
from .registry import register

aten = torch.ops.aten


def _device(device, like=None):
    if device is not None:
        return torch.device(device)
    return like.device if like is not None else torch.device("cpu")


def draw(kind, shape, a, b, dtype, device):
    """`kind` ("uniform" or "normal") values of `shape` in `dtype`, from this graph's seed."""
    shape = tuple(shape)
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    builder = current_builder()
    offset = getattr(builder, "rng_offset", 0)
    builder.rng_offset = offset + numel(shape)
    seed = P["seed"](device=device)
    return convert(P[kind](shape, float(a), float(b), dtype=compute, device=device, seed=seed, offset=offset), dtype)


def _float_dtype(dtype):
    return dtype or torch.get_default_dtype()


@register(aten.rand.default)
def rand(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return draw("uniform", size, 0.0, 1.0, _float_dtype(dtype), _device(device))


@register(aten.randn.default)
def randn(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return draw("normal", size, 0.0, 1.0, _float_dtype(dtype), _device(device))


@register(aten.rand_like.default)
def rand_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return draw("uniform", x.shape, 0.0, 1.0, dtype or x.dtype, _device(device, x))


@register(aten.randn_like.default)
def randn_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return draw("normal", x.shape, 0.0, 1.0, dtype or x.dtype, _device(device, x))


@register(aten.uniform.default)
def uniform(x, from_=0.0, to=1.0, *, generator=None):
    return draw("uniform", x.shape, from_, to, x.dtype, x.device)


@register(aten.normal_functional.default)
def normal_functional(x, mean=0.0, std=1.0, *, generator=None):
    return draw("normal", x.shape, mean, std, x.dtype, x.device)


@register(aten.normal.Tensor_float, aten.normal.float_Tensor, aten.normal.Tensor_Tensor)
def normal(mean, std=1.0, *, generator=None):
    tensors = [t for t in (mean, std) if is_tensor_like(t)]
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    dtype = tensors[0].dtype
    z = draw("normal", shape, 0.0, 1.0, dtype, tensors[0].device)
    m = broadcast_to(convert(mean, dtype), shape) if is_tensor_like(mean) else float(mean)
    s = broadcast_to(convert(std, dtype), shape) if is_tensor_like(std) else float(std)
    return P["add"](P["mul"](z, s), m) if is_tensor_like(m) else P["add"](P["mul"](z, s), m)


@register(aten.normal.float_float)
def normal_sized(mean, std, size, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None):
    return draw("normal", size, mean, std, _float_dtype(dtype), _device(device))


def _bernoulli(shape, p, dtype, device):
    u = draw("uniform", shape, 0.0, 1.0, torch.float32 if not is_tensor_like(p) else _prob_dtype(p), device)
    p = broadcast_to(convert(p, u.dtype), shape) if is_tensor_like(p) else float(p)
    return convert(P["lt"](u, p), dtype)


def _prob_dtype(p):
    return p.dtype if p.dtype.is_floating_point and p.dtype not in (torch.float16, torch.bfloat16) else torch.float32


@register(aten.bernoulli.default)
def bernoulli(x, *, generator=None):
    return _bernoulli(x.shape, x, x.dtype, x.device)


@register(aten.bernoulli.p)
def bernoulli_p(x, p=0.5, *, generator=None):
    return _bernoulli(x.shape, p, x.dtype, x.device)


@register(aten.bernoulli.Tensor)
def bernoulli_tensor(x, p, *, generator=None):
    return _bernoulli(x.shape, p, x.dtype, x.device)


def _randint(low, high, shape, dtype, device):
    u = draw("uniform", shape, 0.0, 1.0, torch.float64, device)
    v = P["add"](P["floor"](P["mul"](u, float(high - low))), float(low))
    return convert(v, dtype)


@register(aten.randint.default)
def randint(high, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _randint(0, high, tuple(size), dtype or torch.int64, _device(device))


@register(aten.randint.low)
def randint_low(low, high, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _randint(low, high, tuple(size), dtype or torch.int64, _device(device))


@register(aten.randint_like.default)
def randint_like(x, high, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _randint(0, high, tuple(x.shape), dtype or x.dtype, _device(device, x))


@register(aten.randint_like.low_dtype)
def randint_like_low(x, low, high, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _randint(low, high, tuple(x.shape), dtype or x.dtype, _device(device, x))


@register(aten.native_dropout.default)
def native_dropout(x, p, train):
    if not train or p == 0:
        return x, P["full"](tuple(x.shape), True, dtype=torch.bool, device=x.device)
    if p == 1:
        return (P["full"](tuple(x.shape), 0, dtype=x.dtype, device=x.device),
                P["full"](tuple(x.shape), False, dtype=torch.bool, device=x.device))
    keep = P["lt"](draw("uniform", x.shape, 0.0, 1.0, torch.float32, x.device), 1.0 - p)
    out = P["mul"](P["mul"](x, convert(keep, x.dtype)), 1.0 / (1.0 - p))
    return out, keep


def _from_uniform(fn):
    def decomp(x, *args, generator=None):
        compute = x.dtype if x.dtype == torch.float64 else torch.float32
        u = draw("uniform", x.shape, 0.0, 1.0, compute, x.device)
        return convert(fn(u, *args), x.dtype)

    return decomp


register(aten.exponential.default)(_from_uniform(lambda u, lambd=1.0: P["div"](P["neg"](P["log1p"](P["neg"](u))), float(lambd))))
register(aten.cauchy.default)(_from_uniform(
    lambda u, median=0.0, sigma=1.0: P["add"](P["mul"](P["tan"](P["mul"](P["sub"](u, 0.5), math.pi)), float(sigma)), float(median))))
register(aten.geometric.default)(_from_uniform(
    lambda u, p: P["ceil"](P["div"](P["log"](P["sub"](1.0, u)), math.log1p(-p)))))


@register(aten.log_normal.default)
def log_normal(x, mean=1.0, std=2.0, *, generator=None):
    return P["exp"](draw("normal", x.shape, mean, std, x.dtype, x.device))


@register(aten.rrelu_with_noise_functional.default)
def rrelu_with_noise(x, noise, lower=0.125, upper=1 / 3, training=False, generator=None):
    """Negative inputs times a slope: drawn uniform in [lower, upper) when training (the slopes are the
    second result), their mean otherwise."""
    neg = P["lt"](x, convert(0, x.dtype)) if not x.dtype.is_floating_point else P["le"](x, 0.0)
    if not training:
        return P["where"](neg, P["mul"](x, (float(lower) + float(upper)) / 2), x), noise
    slope = draw("uniform", x.shape, lower, upper, x.dtype, x.device)
    slope = P["where"](neg, slope, 1.0)
    return P["mul"](x, slope), convert(slope, noise.dtype)
