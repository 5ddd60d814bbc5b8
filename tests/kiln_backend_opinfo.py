"""OpInfo samples through the real back end, `kiln.compile_fx` (its fallbacks included), in every dtype
eager supports on CPU among DTYPES, compared with eager. Shared by tests/backend_coverage.py (the
table) and tests/e2e/test_opinfo_backend.py (CI's sample, KILN_FULL=1's whole sweep).

`check_pair(op, dtype, target, limit)` gives one (op, dtype)'s outcome, its worst sample's:

- "n/a": eager raises on every sample (or there is none): nothing to compile;
- "compiled": every graph compiled to kernels only, eager's values;
- "fallback": compiled, eager's values, with ATen ops left as `kiln.fallback` (op-level fallback);
- "refused": some graph ran eagerly (a whole-graph refusal at compile time, or a compiled call
  that failed and reran eagerly), with its reason and reason class (fuzz/reasons.py);
- "WRONG": a value, dtype or shape differs from eager's, or Kiln returned where eager raised;
- "CRASH": Kiln raised where eager did not, or another exception type than eager's.

Samples on which eager raises count as "eager raises" (Kiln must raise the same type there).
Samples eager can run go through one graph holding them all (one build per pair); when that graph
is not clean, each sample is compiled alone so the outcome names its sample. Floats compare at
assert_close's default tolerances, 16-bit floats at one rounding step more, where Kiln must then
be at least as close to a float64 run as eager is; ints and bools exactly; random draws and empty
tensors by shape and dtype.
"""
from __future__ import annotations

import warnings

import torch

from kiln_opinfo import _is_random as is_random
from kiln_opinfo import clones, combined_graph, describe, graph_of, unspecified_outputs

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "complex64": torch.complex64, "int32": torch.int32,
          "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool}
STATUSES = ["n/a", "compiled", "fallback", "refused", "CRASH", "WRONG"]  # worst last
HALF_TOL = {torch.float16: {"rtol": 2e-3, "atol": 1e-5}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-5}}


def op_name(op) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


def compile_and_run(gm, inputs, target):
    """(outputs or the exception raised, the inputs after the call, the BackendRecords (the graph's, and
    its parts' when it was split at a data-dependent op: they compile when called), call-time warnings)."""
    import kiln
    from kiln import records

    records.clear()
    mine = clones(inputs)
    strict, kiln.config.strict = kiln.config.strict, False  # every graph gets its outcome (read from records)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn = kiln.compile_fx(gm, clones(inputs), target=target)
            torch.manual_seed(0)
            out = fn(*mine)
        except Exception as e:  # noqa: BLE001 - compared with eager's exception
            out = e
        finally:
            kiln.config.strict = strict
    calls = [str(w.message) for w in caught if type(w.message).__name__ == "KilnCompileWarning"
             and "could not compile this graph" not in str(w.message)]
    return out, mine, records.backend_records(), calls


def _tensors(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _float64_run(inputs, dtype, call, which):
    """The sample run with its `dtype` inputs upcast to float64: its outputs (which=0) or its inputs
    after the call (which=1); None when it cannot run so."""
    upcast = [x.double() if x.dtype == dtype else x for x in clones(inputs)]
    try:
        torch.manual_seed(0)
        outs = _tensors(call(*upcast))
    except Exception:  # noqa: BLE001 - a dtype argument baked into the sample, say
        return None
    return outs if which == 0 else tuple(upcast)


def _mismatch(got, expected, gm, inputs, dtype, call, which=0) -> str | None:
    """None when Kiln's outputs are eager's (see the module's docstring for the tolerances)."""
    got, expected = _tensors(got), _tensors(expected)
    if len(got) != len(expected):
        return f"{len(got)} outputs, eager {len(expected)}"
    unspecified, reference = None, None
    for i, (g, e) in enumerate(zip(got, expected)):
        if g.dtype != e.dtype or g.shape != e.shape:
            return f"output {i}: {g.dtype}{list(g.shape)} vs eager's {e.dtype}{list(e.shape)}"
        exact = not (e.dtype.is_floating_point or e.dtype.is_complex)
        tol = {"rtol": 0, "atol": 0} if exact else HALF_TOL.get(e.dtype, {})
        try:
            torch.testing.assert_close(g, e, equal_nan=True, **tol)
            continue
        except AssertionError as err:
            detail = str(err).strip().splitlines()
            detail = " ".join(line.strip() for line in detail[:4])
        if unspecified is None:  # random draws (outputs, inputs written) and empty outputs: not eager's to give
            from kiln import prims
            try:
                aten_gm = prims.trace_aten(gm, clones(inputs))
                unspecified = unspecified_outputs(aten_gm) if which == 0 else \
                    (set(range(len(expected))) if is_random(aten_gm) else set())
            except Exception:  # noqa: BLE001
                unspecified = set()
        if i in unspecified:
            continue
        if e.dtype in HALF_TOL:
            if reference is None:
                reference = _float64_run(inputs, dtype, call, which) or ()
            if i >= len(reference) or reference[i].shape != e.shape:
                return f"{'output' if which == 0 else 'input'} {i}: {detail}"[:400]
            r = reference[i].double()
            kiln_err, eager_err = (g.double() - r).abs(), (e.double() - r).abs()
            t = HALF_TOL[e.dtype]
            if ((kiln_err <= eager_err + t["atol"] + t["rtol"] * r.abs()) | (g.isnan() & e.isnan())).all():
                continue
        return f"{'output' if which == 0 else 'input'} {i}: {detail}"[:400]
    return None


def check_graph(gm, inputs, call, dtype, target) -> dict:
    """One graph (eager runs it) through compile_fx: {"status", "fallback_ops", "reason", "detail"}."""
    from fuzz.reasons import reason_class

    theirs = clones(inputs)
    torch.manual_seed(0)
    expected = call(*theirs)
    out, mine, recs, calls = compile_and_run(gm, inputs, target)
    # a split's op is the torch-level node, here the whole sample (graph_of): named by why instead
    result = {"fallback_ops": sorted({"data-dependent split" if r.split else op
                                      for r in recs if r.compiled for op in r.fallback_ops})}
    refused = next((r for r in recs if not r.compiled), None)
    if isinstance(out, Exception):
        return {**result, "status": "CRASH", "detail": _first_line(out)}
    wrong = _mismatch(out, expected, gm, inputs, dtype, call) or _mismatch(mine, theirs, gm, inputs, dtype, call, which=1)
    if wrong:
        return {**result, "status": "WRONG", "detail": wrong}
    if refused is not None:
        return {**result, "status": "refused", "reason": refused.reason[:500], "class": reason_class(refused.reason)}
    if calls:
        return {**result, "status": "refused", "reason": calls[0][:500], "class": "call-time failure"}
    return {**result, "status": "fallback" if result["fallback_ops"] else "compiled"}


def check_eager_raises(gm, inputs, error: Exception, target) -> dict | None:
    """None when Kiln raises eager's exception type on a sample eager raises on; else the outcome."""
    out, _, _, _ = compile_and_run(gm, inputs, target)
    if not isinstance(out, Exception):
        return {"status": "WRONG", "detail": f"eager raises {_first_line(error)}; Kiln returned a result"}
    if type(out) is not type(error):
        return {"status": "CRASH", "detail": f"eager raises {_first_line(error)}; Kiln raised {_first_line(out)}"}
    return None


def samples(op, dtype, limit):
    torch.manual_seed(0)  # OpInfo sample generators draw from the global RNG
    out = []
    for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=False)):
        if limit is not None and i >= limit:
            break
        out.append((i, sample))
    return out


def check_pair(op, dtype, target="cpp", limit=None) -> dict:
    """The (op, dtype) outcome: the worst of its samples' (see the module's docstring)."""
    result = {"op": op_name(op), "dtype": str(dtype).replace("torch.", ""), "target": target, "status": "n/a",
              "samples": 0, "eager_raises": 0, "fallback_ops": [], "reason": "", "class": "", "detail": ""}
    runnable = []
    for i, sample in samples(op, dtype, limit):
        result["samples"] += 1
        gm, inputs, call = graph_of(op, sample)
        torch.manual_seed(0)
        try:
            call(*clones(inputs))
        except Exception as e:  # noqa: BLE001 - eager's own error: Kiln must raise it too
            result["eager_raises"] += 1
            bad = check_eager_raises(gm, inputs, e, target)
            if bad:
                _worse(result, bad, i, sample)
            continue
        runnable.append((f"sample {i} {describe(sample)}", op, sample))
    if not runnable:
        return result
    outcome = None
    if len(runnable) > 1:
        gm, inputs, call, _, kept = combined_graph(runnable)
        if len(kept) == len(runnable):
            outcome = check_graph(gm, inputs, call, dtype, target)
            if outcome["status"] in ("compiled", "fallback"):
                _worse(result, outcome, None, None)
                return result
    for label, op_, sample in runnable:  # one by one: name the sample
        gm, inputs, call = graph_of(op_, sample)
        _worse(result, check_graph(gm, inputs, call, dtype, target), label, None)
    return result


def _worse(result: dict, outcome: dict, i, sample) -> None:
    result["fallback_ops"] = sorted(set(result["fallback_ops"]) | set(outcome.get("fallback_ops", [])))
    if STATUSES.index(outcome["status"]) > STATUSES.index(result["status"]):
        where = i if isinstance(i, str) else (f"sample {i} {describe(sample)}" if i is not None else "")
        result.update(status=outcome["status"], reason=outcome.get("reason", ""), detail=outcome.get("detail", ""),
                      where=str(where)[:300])
        result["class"] = outcome.get("class", "")
