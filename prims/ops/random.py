"""Random prims with an explicit seed and offset.

Element i of a draw is a pure function of (seed, offset + i): a counter-based hash (Thomas
Mueller's 32-bit mixer, twice, keyed by the seed's two 31-bit halves). So the reference and the
generated C++/Triton code give the same bits, a draw can be recomputed anywhere (fusion,
recomputation), and the same seed gives the same numbers. Kiln's numbers are *not* eager's:
eager's Philox/MT19937 streams cannot be matched bit for bit. What matches is the distribution,
and `seed` draws each run's seed from torch's default generator, so `torch.manual_seed` makes
compiled runs reproducible and successive runs differ (tests/prims/test_random.py).
"""
from __future__ import annotations

import math

import torch

from ..symbolic import is_size
from ..builder import is_tensor_like
from ..meta import TensorMeta, numel
from ..prim import Category, check, register_prim

MASK32 = 0xFFFFFFFF
MIX = 0x45D9F3B  # < 2**27: products of 32-bit values stay below 2**59, so int64 never overflows
STREAM2 = 0x5BD1E995  # keys a second, independent stream (normal draws need two uniforms)


def mix32(x):
    """One round of the 32-bit mixer on int64 values in [0, 2**32): works on tensors and ints."""
    x = (((x >> 16) ^ x) * MIX) & MASK32
    x = (((x >> 16) ^ x) * MIX) & MASK32
    return (x >> 16) ^ x


def random_bits(seed, counter, stream=0):
    """32 random bits per counter (int64 in [0, 2**32)) for a 64-bit seed."""
    lo, hi = seed & 0x7FFFFFFF, (seed >> 31) & 0x7FFFFFFF
    return mix32(mix32((counter & MASK32) ^ lo ^ stream) ^ hi)


def unit_uniform(bits, dtype):
    """[0, 1) from the top 24 bits (a float32 has 24 bits of mantissa)."""
    return (bits >> 8).to(dtype) * (1.0 / (1 << 24))


def _counters(shape, offset, device):
    return torch.arange(offset, offset + numel(shape), dtype=torch.int64, device=device).reshape(shape)


def _seed_meta(*, device):
    return TensorMeta.contiguous((), torch.int64, device)


@register_prim("seed", Category.RANDOM, _seed_meta,
               "a fresh 62-bit seed drawn from torch's default generator (one per graph run)", impure=True)
def seed(*, device):
    return torch.randint(0, 1 << 62, (), dtype=torch.int64).to(device)


def _draw_meta(name):
    def meta(shape, a, b, *, dtype, device, seed, offset):
        check(all(is_size(s) for s in shape), name, f"bad shape {shape}")
        check(dtype.is_floating_point, name, f"draws floating point values, not {dtype}")
        check(is_tensor_like(seed) and seed.dtype == torch.int64 and seed.ndim == 0, name, "seed must be a 0-d int64 tensor")
        check(is_size(offset), name, f"bad offset {offset}")
        check(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)), name, "parameters must be numbers")
        return TensorMeta.contiguous(tuple(shape), dtype, device)

    return meta


@register_prim("uniform", Category.RANDOM, _draw_meta("uniform"),
               "low + (high - low) * u, u uniform in [0, 1), element i from (seed, offset + i)")
def uniform(shape, low, high, *, dtype, device, seed, offset):
    u = unit_uniform(random_bits(int(seed), _counters(tuple(shape), offset, device)), dtype)
    return (u * (high - low) + low).to(dtype)


@register_prim("normal", Category.RANDOM, _draw_meta("normal"),
               "mean + std * z, z standard normal (Box-Muller), element i from (seed, offset + i)")
def normal(shape, mean, std, *, dtype, device, seed, offset):
    c = _counters(tuple(shape), offset, device)
    s = int(seed)
    u1 = 1.0 - unit_uniform(random_bits(s, c), torch.float64)  # (0, 1]: log stays finite
    u2 = unit_uniform(random_bits(s, c, STREAM2), torch.float64)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return (z * std + mean).to(dtype)
