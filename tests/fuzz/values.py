"""Input values: ordinary numbers mixed with each dtype's special values, and the literal printer.

Values are plain Python numbers (a flat list per tensor), generated with `random.Random`, so a
program's inputs print as literals in a repro and travel to the worker as text.
"""
from __future__ import annotations

import math
import random

import torch

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
}
FLOATS = ("float32", "float64", "float16", "bfloat16")
INTS = ("int32", "int64")


def special_values(dtype: str) -> list:
    """Values that break kernels: infinities, NaN, signed zero, the range ends, denormals."""
    if dtype == "bool":
        return [True, False]
    if dtype in INTS:
        info = torch.iinfo(DTYPES[dtype])
        return [0, -1, info.min, info.max, info.min, info.max, info.min + 1, info.max - 1]
    info = torch.finfo(DTYPES[dtype])
    return [math.inf, -math.inf, math.nan, -0.0, 0.0, info.max, -info.max, info.tiny, -info.tiny,
            info.smallest_normal / 4, 1e30 if dtype in ("float32", "float64", "bfloat16") else 6e4, 1.0, -1.0]


def ordinary_value(rng: random.Random, dtype: str):
    if dtype == "bool":
        return rng.random() < 0.5
    if dtype in INTS:
        return rng.randint(-100, 100) if rng.random() < 0.2 else rng.randint(-6, 6)
    if rng.random() < 0.15:  # small integers stored as floats: exact, and hit floor/round/mod edges
        return float(rng.randint(-5, 5)) + rng.choice((0.0, 0.5))
    return float(f"{rng.gauss(0.0, 2.0):.3g}")


def tensor_values(rng: random.Random, dtype: str, numel: int, special: float) -> list:
    """`numel` values; each is a special one with probability `special`."""
    specials = special_values(dtype)
    return [rng.choice(specials) if rng.random() < special else ordinary_value(rng, dtype) for _ in range(numel)]


def index_values(rng: random.Random, size: int, numel: int, out_of_range: float = 0.0) -> list:
    """int64 indices into a dim of `size` (negative ones too); rarely one out of range."""
    if size == 0:
        return [0] * numel if rng.random() < out_of_range else []
    values = [rng.randint(-size, size - 1) for _ in range(numel)]
    if values and rng.random() < out_of_range:
        values[rng.randrange(len(values))] = rng.choice((size, -size - 1))
    return values


def lit(value) -> str:
    """A Python literal for a value: `inf`, `-inf`, `nan` (the repro defines them), `-0.0` kept."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(lit(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    return str(value)  # ints, and Var / Code objects that print as source
