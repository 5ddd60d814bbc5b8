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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


@dataclass
class Outcome:
    outputs: tuple | None        # None when the call raised
    inputs: list                 # the argument objects, after the call
    error: BaseException | None
    loosest: torch.dtype | None = None  # least precise float dtype the computation went through (eager run)


# eager's default tolerances (torch.testing.assert_close), loosest first
TOLERANCES = {torch.bfloat16: (1.6e-2, 1e-5), torch.float16: (1e-3, 1e-5), torch.float32: (1.3e-6, 1e-5),
              torch.float64: (1e-7, 1e-7)}


class _DtypeRecorder(TorchDispatchMode):
    """Records the dtype of every tensor an op makes while the program runs eagerly."""

    def __init__(self):
        super().__init__()
        self.dtypes: set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.dtypes.update(t.dtype for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out


@dataclass(frozen=True)
class Mismatch:
    cls: str                     # "WRONG" | "CRASH"
    kind: str                    # a short stable key: "values", "dtype", "input", "alias", "raises", ...
    detail: str


def run(fn, make_inputs, *, record_dtypes: bool = False) -> Outcome:
    """Call fn on fresh inputs. record_dtypes (for the eager run): note the least precise float
    dtype among the inputs and every intermediate, whose tolerance the comparison then uses (a
    float32 value rounded differently by one ulp stays that far off after a cast to float64)."""
    inputs = make_inputs()
    recorder = _DtypeRecorder()
    dtypes = {t.dtype for t in inputs if isinstance(t, torch.Tensor)}
    try:
        if record_dtypes:
            with recorder:
                out = fn(*inputs)
        else:
            out = fn(*inputs)
    except Exception as e:  # noqa: BLE001  (compared with eager's exception)
        return Outcome(None, inputs, e)
    loosest = next((d for d in TOLERANCES if d in dtypes | recorder.dtypes), None)
    return Outcome(tuple(out), inputs, None, loosest)


def unwrap(error: BaseException) -> BaseException:
    """The user-facing error behind TorchDynamo's wrappers (it re-raises op errors met while tracing)."""
    while type(error).__module__.startswith("torch._dynamo") and error.__cause__ is not None:
        error = error.__cause__
    return error


def describe(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first[:300]}"


def compare(eager: Outcome, got: Outcome, reference: Outcome | None = None) -> Mismatch | None:
    """`reference`: the program run eagerly on its float inputs upcast to float64; with it, float
    values that miss eager's tolerance still pass when they are about as close to the reference
    as eager's own (see close_to_reference)."""
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
    refs = reference if reference is not None and reference.error is None else None
    for i, (g, e) in enumerate(zip(got.outputs, eager.outputs)):
        problem = compare_values(g, e, eager.loosest)
        if problem and not (problem[0] == "values" and refs and close_to_reference(g, e, refs.outputs[i], eager.loosest)):
            return Mismatch("WRONG", problem[0], f"output {i}: {problem[1]}")
    for i, (g, e) in enumerate(zip(got.inputs, eager.inputs)):
        problem = compare_values(g, e, eager.loosest)
        if problem and not (problem[0] == "values" and refs and close_to_reference(g, e, refs.inputs[i], eager.loosest)):
            return Mismatch("WRONG", "input", f"input {i} after the call: {problem[1]}")
    ga, ea = aliasing(got), aliasing(eager)
    if ga != ea:
        return Mismatch("WRONG", "alias", f"aliasing {sorted(ga)}, eager {sorted(ea)}")
    return None


def compare_values(got, expected, loosest: torch.dtype | None = None) -> tuple[str, str] | None:
    """(kind, detail) when they differ: type, dtype, shape, then values (eager's tolerances for
    the dtype, or for `loosest` when that is less precise; exact for integers and bools; NaN
    where eager has NaN)."""
    if isinstance(expected, torch.Tensor) != isinstance(got, torch.Tensor):
        return "type", f"{type(got).__name__}, eager {type(expected).__name__}"
    if not isinstance(expected, torch.Tensor):
        if type(got) is not type(expected):
            return "type", f"{type(got).__name__} {got!r}, eager {type(expected).__name__} {expected!r}"
        if isinstance(expected, float):  # read from a tensor (.item()): that tensor's tolerance
            rtol, atol = tolerance(torch.float64, loosest)
            same = math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) or (math.isnan(got) and math.isnan(expected))
        else:
            same = got == expected
        return None if same else ("values", f"{got!r}, eager {expected!r}")
    if got.dtype != expected.dtype:
        return "dtype", f"dtype {got.dtype}, eager {expected.dtype}"
    if got.shape != expected.shape:
        return "shape", f"shape {tuple(got.shape)}, eager {tuple(expected.shape)}"
    rtol, atol = tolerance(expected.dtype, loosest) if expected.dtype.is_floating_point else (0.0, 0.0)
    try:
        torch.testing.assert_close(got, expected, equal_nan=True, check_stride=False, rtol=rtol, atol=atol)
    except AssertionError as e:
        return "values", " ".join(str(e).split())[:600]
    return None


def close_to_reference(got, expected, reference, loosest=None) -> bool:
    """Whether `got` is about as close to the float64 reference as eager's `expected` is: NaNs and
    infinities where eager has them, and over the finite elements a root-mean-square error at
    most 3x eager's plus the atol of the least precise dtype the computation went through
    (TorchInductor's accuracy check does the same). This
    forgives rounding that a later op amplifies (fmod or a difference of nearly equal values
    after a one-ulp difference in float32), never a NaN, an infinity or a wrong dtype."""
    if not (isinstance(got, torch.Tensor) and isinstance(reference, torch.Tensor) and expected.dtype.is_floating_point
            and reference.shape == expected.shape == got.shape):
        return False
    g, e, r = got.double(), expected.double(), reference.double()
    nan = e.isnan()
    if not torch.equal(g.isnan(), nan):
        return False
    inf = e.isinf() | g.isinf()
    if not torch.equal(g[inf], e[inf]):
        return False
    finite = ~nan & ~inf & r.isfinite()
    no_reference = ~nan & ~inf & ~r.isfinite()  # finite here, overflowed in float64: eager's tolerance
    rtol, atol = tolerance(expected.dtype, loosest)
    if not torch.allclose(g[no_reference], e[no_reference], rtol=rtol, atol=atol):
        return False

    def rmse(x):
        return (x[finite] - r[finite]).pow(2).mean().sqrt().item() if finite.any() else 0.0

    return rmse(g) <= 3 * rmse(e) + atol


def tolerance(dtype: torch.dtype, loosest: torch.dtype | None) -> tuple[float, float]:
    """(rtol, atol): eager's for `dtype`, or for `loosest` when that is less precise."""
    own = dtype if dtype in TOLERANCES else torch.float32
    return TOLERANCES[min(own, loosest or own, key=list(TOLERANCES).index)]


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
