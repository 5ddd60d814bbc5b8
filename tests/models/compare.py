"""Model outputs as flat named tensors, and the comparison with eager's.

Outputs (ModelOutput dicts, tuples, lists, nested) flatten to [(path, tensor)]; anything that is not
a tensor or a container of them (None, caches, strings) is left out. Floats compare at
`torch.testing.assert_close`'s default tolerances for their dtype (eager's), integers and bools
exactly; dtypes and shapes must match.
"""
from __future__ import annotations

import torch

try:
    from fuzz.check import close_to_reference  # noqa: F401 (check.py imports it from here)
except ImportError:  # python -m tests.models
    from tests.fuzz.check import close_to_reference  # noqa: F401


def flatten(value, path="out") -> list[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        return [(path, value)]
    if isinstance(value, dict) or hasattr(value, "keys") and hasattr(value, "__getitem__"):
        return [item for k in value.keys() for item in flatten(value[k], f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [item for i, v in enumerate(value) for item in flatten(v, f"{path}[{i}]")]
    return []


def mismatch(got, expected, values=True, reference=None) -> str | None:
    """None when `got` is eager's `expected` (values too, unless values=False); else what differs.
    `reference`: the model run in float64; a float output that misses eager's tolerance still
    passes when it is about as close to the reference as eager's (the fuzzer's rule)."""
    g, e = flatten(got), flatten(expected)
    refs = dict(flatten(reference)) if reference is not None else {}
    if [p for p, _ in g] != [p for p, _ in e]:
        return f"outputs differ: {[p for p, _ in g]} vs eager's {[p for p, _ in e]}"
    for (path, a), (_, b) in zip(g, e):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{path}: {a.dtype}{list(a.shape)} vs eager's {b.dtype}{list(b.shape)}"
        if not values:
            continue
        exact = not (b.dtype.is_floating_point or b.dtype.is_complex)
        try:
            torch.testing.assert_close(a, b, equal_nan=True, **({"rtol": 0, "atol": 0} if exact else {}))
        except AssertionError:
            if path in refs and close_to_reference(a, b, refs[path]):
                continue
            return f"{path} {b.dtype}{list(b.shape)}: {describe_difference(a, b)}"
    return None


def describe_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    if not (b.dtype.is_floating_point or b.dtype.is_complex):
        wrong = (a != b)
        return f"{int(wrong.sum())} of {b.numel()} elements differ (exact dtype)"
    a64, b64 = a.double(), b.double()
    diff = (a64 - b64).abs()
    finite = torch.isfinite(diff)
    nan_mismatch = int((a64.isnan() != b64.isnan()).sum())
    worst = float(diff[finite].max()) if finite.any() else float("nan")
    scale = float(b64[torch.isfinite(b64)].abs().max()) if torch.isfinite(b64).any() else float("nan")
    return f"max abs diff {worst:.3g} (eager's max abs {scale:.3g}), NaN mismatches {nan_mismatch}"


def same(got, expected) -> bool:
    return mismatch(got, expected) is None


def snapshot(model) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers, cloned (a forward may write buffers)."""
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items() if isinstance(v, torch.Tensor)}


def restore(model, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in model.state_dict(keep_vars=True).items():
            if k in state and isinstance(v, torch.Tensor):
                v.copy_(state[k])


def state_mismatch(model, expected: dict[str, torch.Tensor]) -> str | None:
    now = snapshot(model)
    for k, v in expected.items():
        if k in now and not torch.equal(now[k], v) and not (v.is_floating_point() and torch.allclose(now[k], v, equal_nan=True)):
            return f"state {k} after the call differs from eager's: {describe_difference(now[k], v)}"
    return None
