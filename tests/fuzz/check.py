"""Compare one compiled call with eager: exceptions, outputs, the inputs after the call, aliasing.

`compare(eager, got)` returns None when they agree, else a Mismatch whose `kind` says what
differs and whose `cls` is the fuzzer's class for it: CRASH (an exception eager does not raise,
or of another type) or WRONG (a different result, a mutated input that differs, different
aliasing, or no exception where eager raises).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Outcome:
    outputs: tuple | None        # None when the call raised
    inputs: list                 # the argument objects, after the call
    error: BaseException | None


@dataclass(frozen=True)
class Mismatch:
    cls: str                     # "WRONG" | "CRASH"
    kind: str                    # a short stable key: "values", "dtype", "input", "alias", "raises", ...
    detail: str


def run(fn, make_inputs) -> Outcome:
    inputs = make_inputs()
    try:
        out = fn(*inputs)
    except Exception as e:  # noqa: BLE001  (compared with eager's exception)
        return Outcome(None, inputs, e)
    return Outcome(tuple(out), inputs, None)


def unwrap(error: BaseException) -> BaseException:
    """The user-facing error behind TorchDynamo's wrappers (it re-raises op errors met while tracing)."""
    while type(error).__module__.startswith("torch._dynamo") and error.__cause__ is not None:
        error = error.__cause__
    return error


def describe(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first[:300]}"


def compare(eager: Outcome, got: Outcome) -> Mismatch | None:
    if eager.error is not None:
        if got.error is None:
            return Mismatch("WRONG", "no_error", f"returned a result; eager raised {describe(eager.error)}")
        err = unwrap(got.error)
        if not isinstance(err, type(eager.error)):
            return Mismatch("CRASH", "error_type", f"raised {describe(err)}; eager raised {describe(eager.error)}")
        return None
    if got.error is not None:
        return Mismatch("CRASH", "raises", f"raised {describe(unwrap(got.error))}; eager returned")
    if len(got.outputs) != len(eager.outputs):
        return Mismatch("WRONG", "arity", f"{len(got.outputs)} outputs, eager {len(eager.outputs)}")
    for i, (g, e) in enumerate(zip(got.outputs, eager.outputs)):
        problem = compare_values(g, e)
        if problem:
            return Mismatch("WRONG", problem[0], f"output {i}: {problem[1]}")
    for i, (g, e) in enumerate(zip(got.inputs, eager.inputs)):
        problem = compare_values(g, e)
        if problem:
            return Mismatch("WRONG", "input", f"input {i} after the call: {problem[1]}")
    ga, ea = aliasing(got), aliasing(eager)
    if ga != ea:
        return Mismatch("WRONG", "alias", f"aliasing {sorted(ga)}, eager {sorted(ea)}")
    return None


def compare_values(got, expected) -> tuple[str, str] | None:
    """(kind, detail) when they differ: type, dtype, shape, then values (eager's tolerances for
    the dtype, exact for integers and bools, NaN where eager has NaN)."""
    if isinstance(expected, torch.Tensor) != isinstance(got, torch.Tensor):
        return "type", f"{type(got).__name__}, eager {type(expected).__name__}"
    if not isinstance(expected, torch.Tensor):
        if type(got) is not type(expected):
            return "type", f"{type(got).__name__} {got!r}, eager {type(expected).__name__} {expected!r}"
        same = got == expected or (isinstance(got, float) and math.isnan(got) and math.isnan(expected))
        return None if same else ("values", f"{got!r}, eager {expected!r}")
    if got.dtype != expected.dtype:
        return "dtype", f"dtype {got.dtype}, eager {expected.dtype}"
    if got.shape != expected.shape:
        return "shape", f"shape {tuple(got.shape)}, eager {tuple(expected.shape)}"
    exact = not (expected.dtype.is_floating_point or expected.dtype.is_complex)
    try:
        torch.testing.assert_close(got, expected, equal_nan=True, check_stride=False,
                                   **({"rtol": 0, "atol": 0} if exact else {}))
    except AssertionError as e:
        return "values", " ".join(str(e).split())[:600]
    return None


def aliasing(outcome: Outcome) -> set[tuple]:
    """Which outputs share memory with which inputs or earlier outputs, and whether they are the
    very same object: (output, 'input'|'output', index, same_object)."""
    def storage(t):
        s = t.untyped_storage()
        return s.data_ptr() if s.nbytes() else None

    pairs = set()
    inputs = [(i, t) for i, t in enumerate(outcome.inputs) if isinstance(t, torch.Tensor)]
    outputs = [(j, t) for j, t in enumerate(outcome.outputs) if isinstance(t, torch.Tensor)]
    for j, out in outputs:
        ptr = storage(out)
        for i, inp in inputs:
            if out is inp or (ptr is not None and storage(inp) == ptr):
                pairs.add((j, "input", i, out is inp))
        for k, other in outputs:
            if k < j and (out is other or (ptr is not None and storage(other) == ptr)):
                pairs.add((j, "output", k, out is other))
    return pairs


def stride_differs(eager: Outcome, got: Outcome) -> list[str]:
    """Outputs whose strides differ from eager's (reported, not a failure: values are what count)."""
    notes = []
    for i, (g, e) in enumerate(zip(got.outputs or (), eager.outputs or ())):
        if isinstance(g, torch.Tensor) and isinstance(e, torch.Tensor) and g.shape == e.shape and g.numel() > 1:
            significant = [d for d, s in enumerate(e.shape) if s > 1]
            if [g.stride(d) for d in significant] != [e.stride(d) for d in significant]:
                notes.append(f"output {i}: strides {g.stride()}, eager {e.stride()}")
    return notes
