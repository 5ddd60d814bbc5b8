"""OpInfo gradients through the real back end: every op with float32 backward support, its samples'
tensors requiring grad, compiled by `kiln.compile_fx` (forward and backward), the outputs and
`torch.autograd.grad(outputs, inputs, cotangents)` compared with eager's. Shared by
tests/gradient_coverage.py (the table) and tests/e2e/test_opinfo_grad.py (CI's sample).

`check_grad_pair(op, dtype, target, limit)` gives one (op, dtype)'s outcome, its worst sample's:

- "n/a": no sample eager can differentiate (it raises, or no output requires grad) other than samples
  that draw random numbers (Kiln's stream is not eager's: their gradients are not eager's to compare;
  tests/e2e/test_model_training.py checks dropout's forward and backward agree);
- "compiled": every graph compiled to kernels only, eager's outputs and gradients;
- "fallback": the same with ATen ops left as `kiln.fallback` (op-level fallback);
- "refused": some graph ran eagerly (a whole-graph refusal, or a call-time failure), with its reason;
- "WRONG": an output or gradient differs from eager's (value, dtype, shape, None vs a nonzero tensor);
- "CRASH": Kiln raised where eager did not (in the forward or in `torch.autograd.grad`).

Gradients compare at assert_close's defaults; where they differ there, Kiln must be at least as
close as eager to the gradients of the same sample computed in float64, or differ from eager's by
no more than 8 float32 rounding steps of the tensor's largest magnitude (an accumulation order
differs, not the formula: see _order_noise). A gradient eager leaves None (the input does not reach a differentiable
output) matches Kiln's None or an all-zero tensor.
"""
from __future__ import annotations

import warnings

import torch

from kiln_backend_opinfo import _first_line, _worse, op_name
from kiln_opinfo import _is_random, combined_graph, describe, graph_of


def supports_grad(op, dtype) -> bool:
    return op.supports_autograd and dtype in op.supported_backward_dtypes("cpu")


def leaves(inputs):
    """Fresh leaf copies (strides kept where they are dense), requiring grad where the sample's do."""
    out = []
    for t in inputs:
        c = t.detach().clone(memory_format=torch.preserve_format)
        out.append(c.requires_grad_(t.requires_grad))
    return out


def _differentiable(outs):
    return [i for i, o in enumerate(outs) if o.requires_grad and (o.is_floating_point() or o.is_complex())]


def forward_and_grads(call, inputs, dtype=None):
    """(outputs, gradients) of one run of `call` on fresh leaves of `inputs` (upcast to float64 when
    `dtype` is given): cotangents drawn from seed 1, gradients by torch.autograd.grad."""
    xs = leaves(inputs)
    if dtype is not None:
        xs = [x.detach().to(dtype).requires_grad_(x.requires_grad) if x.is_floating_point() else x for x in xs]
    torch.manual_seed(0)
    outs = call(*xs)
    outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
    return outs, _grads(outs, xs)


def _grads(outs, xs):
    diff = _differentiable(outs)
    wanted = [x for x in xs if x.requires_grad]
    if not diff or not wanted:
        return None
    gen = torch.Generator().manual_seed(1)
    cotangents = [torch.randn(outs[i].shape, dtype=outs[i].dtype, generator=gen) for i in diff]
    return torch.autograd.grad([outs[i] for i in diff], wanted, cotangents, allow_unused=True)


def compile_and_grad(gm, inputs, target):
    """Kiln's (outputs, gradients) or the exception raised, the BackendRecords, call-time warnings."""
    import kiln
    from kiln import records

    records.clear()
    xs = leaves(inputs)
    strict, kiln.config.strict = kiln.config.strict, False  # every graph gets its outcome (read from records)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn = kiln.compile_fx(gm, leaves(inputs), target=target)
            torch.manual_seed(0)
            outs = fn(*xs)
            outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
            got = (outs, _grads(outs, xs))
        except Exception as e:  # noqa: BLE001 - reported as CRASH
            got = e
        finally:
            kiln.config.strict = strict
    calls = [str(w.message) for w in caught if type(w.message).__name__ == "KilnCompileWarning"
             and "could not compile this graph" not in str(w.message)]
    return got, records.backend_records(), calls


def _close(g, e) -> str | None:
    if g.dtype != e.dtype or g.shape != e.shape:
        return f"{g.dtype}{list(g.shape)} vs eager's {e.dtype}{list(e.shape)}"
    try:
        torch.testing.assert_close(g, e, equal_nan=True)
    except AssertionError as err:
        return " ".join(line.strip() for line in str(err).strip().splitlines()[:4])
    return None


def _no_closer(g, e, r) -> bool:
    """Kiln's value is at least as close to the float64 reference as eager's (to assert_close's tolerances)."""
    if r is None or r.shape != e.shape:
        return False
    r = r.to(torch.complex128 if r.is_complex() else torch.float64)
    kiln_err, eager_err = (g.to(r.dtype) - r).abs(), (e.to(r.dtype) - r).abs()
    return bool(((kiln_err <= eager_err + 1e-5 + 1.3e-6 * r.abs()) | (g.isnan() & e.isnan())).all())


def _order_noise(g, e) -> bool:
    """Differences no larger than 8 float32 rounding steps of the tensor's largest magnitude: a sum whose
    terms cancel (a broadcast's gradient, say) differs by summation order at the scale of its terms,
    where both eager and Kiln may be far from float64 (pow's exponent gradient: 2e6 off)."""
    if g.shape != e.shape or g.dtype != e.dtype or e.numel() == 0 or e.dtype != torch.float32:
        return False
    finite = e.isfinite() & g.isfinite()
    if not bool((finite | (g == e) | (g.isnan() & e.isnan())).all()):
        return False
    scale = e[finite].abs().max().item() if bool(finite.any()) else 0.0
    return bool(((g - e).abs()[finite] <= 1e-5 + 1.3e-6 * e[finite].abs() + 8 * 1.1920929e-07 * scale).all())


def mismatch(got, expected, reference) -> str | None:
    """None when Kiln's (outputs, gradients) are eager's (see the module's docstring)."""
    (outs, grads), (e_outs, e_grads) = got, expected
    r_outs, r_grads = reference if reference is not None else ((), ())
    if len(outs) != len(e_outs):
        return f"{len(outs)} outputs, eager {len(e_outs)}"
    pairs = [("output", i, g, e, r_outs[i] if i < len(r_outs) else None) for i, (g, e) in enumerate(zip(outs, e_outs))]
    if (grads is None) != (e_grads is None):
        return f"gradients: {'none' if grads is None else len(grads)}, eager {'none' if e_grads is None else len(e_grads)}"
    for i, (g, e) in enumerate(zip(grads or (), e_grads or ())):
        if e is None and g is not None and bool((g != 0).any()):
            return f"grad {i}: eager's is None, Kiln's is nonzero"
        if e is not None and g is None:
            if bool((e != 0).any()):
                return f"grad {i}: Kiln's is None, eager's is nonzero"
            continue
        if e is not None:
            pairs.append(("grad", i, g, e, r_grads[i] if r_grads and i < len(r_grads) else None))
    for what, i, g, e, r in pairs:
        if not (e.is_floating_point() or e.is_complex()):
            if g.dtype != e.dtype or g.shape != e.shape or not torch.equal(g, e):
                return f"{what} {i}: differs (exact)"
            continue
        detail = _close(g, e)
        if detail and not _order_noise(g, e) and not (g.shape == e.shape and g.dtype == e.dtype and _no_closer(g, e, r)):
            return f"{what} {i}: {detail}"[:400]
    return None


def _float64(call, inputs):
    try:
        return forward_and_grads(call, inputs, torch.float64)
    except Exception:  # noqa: BLE001 - a dtype baked into the sample
        return None


def check_grad_graph(gm, inputs, call, target) -> dict:
    """One graph (eager differentiates it) through compile_fx: {"status", "fallback_ops", "reason", "detail"}."""
    from fuzz.reasons import reason_class

    expected = forward_and_grads(call, inputs)
    got, recs, calls = compile_and_grad(gm, inputs, target)
    result = {"fallback_ops": sorted({"data-dependent split" if r.split else op
                                      for r in recs if r.compiled for op in r.fallback_ops})}
    if isinstance(got, Exception):
        return {**result, "status": "CRASH", "detail": _first_line(got)}
    wrong = mismatch(got, expected, None)
    if wrong:
        wrong = mismatch(got, expected, _float64(call, inputs))
    if wrong:
        return {**result, "status": "WRONG", "detail": wrong}
    refused = next((r for r in recs if not r.compiled), None)
    if refused is not None:
        return {**result, "status": "refused", "reason": refused.reason[:500], "class": reason_class(refused.reason)}
    if calls:
        return {**result, "status": "refused", "reason": calls[0][:500], "class": "call-time failure"}
    if not recs:
        return {**result, "status": "CRASH", "detail": "no graph reached the back end's records"}
    return {**result, "status": "fallback" if result["fallback_ops"] else "compiled"}


def grad_samples(op, dtype, limit):
    torch.manual_seed(0)  # OpInfo sample generators draw from the global RNG
    out = []
    for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=True)):
        if limit is not None and i >= limit:
            break
        out.append((i, sample))
    return out


def _is_random_op(op, sample) -> bool:
    from kiln import prims

    gm, inputs, _ = graph_of(op, sample)
    try:
        return _is_random(prims.trace_aten(gm, [x.detach() for x in inputs]))
    except Exception:  # noqa: BLE001 - eager's own error shows on the run
        return False


def check_grad_pair(op, dtype=torch.float32, target="cpp", limit=None) -> dict:
    """The (op, dtype) outcome: the worst of its samples' (see the module's docstring)."""
    result = {"op": op_name(op), "dtype": str(dtype).replace("torch.", ""), "target": target, "status": "n/a",
              "samples": 0, "eager_raises": 0, "no_grad": 0, "random": 0, "fallback_ops": [], "reason": "", "class": "",
              "detail": ""}
    runnable = []
    for i, sample in grad_samples(op, dtype, limit):
        result["samples"] += 1
        gm, inputs, call = graph_of(op, sample)
        try:
            _, grads = forward_and_grads(call, inputs)
        except Exception:  # noqa: BLE001 - eager cannot differentiate it: nothing to compare
            result["eager_raises"] += 1
            continue
        if grads is None:
            result["no_grad"] += 1
            continue
        if _is_random_op(op, sample):
            result["random"] += 1
            continue
        runnable.append((f"sample {i} {describe(sample)}", op, sample))
    if not runnable:
        return result
    if len(runnable) > 1:
        gm, inputs, call, _, kept = combined_graph(runnable)
        if len(kept) == len(runnable):
            outcome = check_grad_graph(gm, inputs, call, target)
            if outcome["status"] in ("compiled", "fallback"):
                _worse(result, outcome, None, None)
                return result
    for label, op_, sample in runnable:  # one by one: name the sample
        gm, inputs, call = graph_of(op_, sample)
        _worse(result, check_grad_graph(gm, inputs, call, target), label, None)
    return result

