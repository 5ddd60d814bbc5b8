"""One model through `torch.compile(model, backend="kiln")`, compared with eager.

`run_model(name)` builds the model (build.py), runs it eagerly three times (seed 0 twice, seed 1:
a model whose outputs change with the seed or between equal runs draws random numbers and is
compared by shapes and dtypes only), then compiles it and calls it twice under no_grad in eval
mode, comparing outputs and the model's parameters and buffers after the first call with eager's.

Kiln runs non-strict so that every graph gets its outcome. The graphs TorchDynamo hands the back
end are counted by wrapping Kiln's back end (`kiln.compile_fx`, what backend="kiln" resolves to);
each one's `kiln.records.BackendRecord` says compiled (with its op-level fallbacks: op and reason),
split at a data-dependent op (its parts have records of their own), or refused whole (reason);
a compiled graph that fails when called and reruns eagerly is a call-time fallback (Kiln's
warning). When the compiled model raises, it is run again with `backend="eager"`: if TorchDynamo
fails alone too, the failure is TorchDynamo's (DYNAMO), not Kiln's.

Outcomes (`class`), worst first: SKIP (cannot be built small or run eagerly offline, or within
the worker's memory), DYNAMO (TorchDynamo fails alone too, or its own answer with backend="eager"
differs from eager and Kiln gives that answer),
CRASH (raises where eager does not), WRONG, REFUSED (some graph ran eagerly: a whole-graph
fallback), FALLBACK (every graph compiled, some with op-level fallbacks), OK (compiled, kernels
and library calls only), NO_GRAPH (TorchDynamo handed Kiln nothing). DEAD (the worker died or
timed out) comes from the runner.
"""
from __future__ import annotations

import os
import time
import traceback
import warnings

import torch

from .build import Unbuildable, build, run_eager
from .compare import mismatch, restore, snapshot, state_mismatch
from .zoo import by_name

try:
    from fuzz.reasons import reason_class
except ImportError:  # python -m tests.models
    from tests.fuzz.reasons import reason_class

OUTCOMES = ("OK", "FALLBACK", "REFUSED", "WRONG", "CRASH", "DYNAMO", "DEAD", "NO_GRAPH", "SKIP", "EAGER_OK")


def _out_of_memory(e: BaseException) -> bool:
    """Over the worker's address-space limit (--memory-gb): the model is too big to try, not Kiln's fault."""
    return isinstance(e, MemoryError) or "can't allocate memory" in str(e)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:400] if text else ''}"


def _compiled_run(model, inputs, state0, backend=None):
    """(outputs of two calls, state after the first call, Kiln's warnings, graphs handed to Kiln)."""
    import kiln
    from kiln import records

    torch._dynamo.reset()
    records.clear()
    restore(model, state0)
    handed = []

    def counting(gm, example_inputs):
        handed.append(gm)
        return kiln.compile_fx(gm, example_inputs)

    compiled = torch.compile(model, backend=backend or counting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = run_eager(compiled, inputs)
        after = snapshot(model)
        second = run_eager(compiled, inputs)
    messages = [str(w.message) for w in caught if type(w.message).__name__ == "KilnCompileWarning"]
    return first, second, after, messages, handed


def run_model(name: str) -> dict:
    import kiln
    from kiln import records

    model_type = by_name()[name]
    result = {"id": name, "cls": model_type.cls, "class": None}
    start = time.perf_counter()
    try:
        built = build(model_type)
    except Unbuildable as e:
        result.update({"class": "SKIP", "skip": str(e)})
        return result
    model, inputs = built.model, built.inputs
    result.update(tier=built.tier, params=built.params, inputs=built.describe())
    try:
        state0 = snapshot(model)
        expected = run_eager(model, inputs)
        state1 = snapshot(model)
        again = run_eager(model, inputs)
        other_seed = run_eager(model, inputs, seed=1)
    except Exception as e:  # noqa: BLE001
        if not _out_of_memory(e):
            raise
        result.update({"class": "SKIP", "skip": f"memory: {_first_line(e)}"})
        return result
    random = mismatch(again, expected) is not None or mismatch(other_seed, expected) is not None
    result.update(random=random, eager_s=round(time.perf_counter() - start, 2))
    if os.environ.get("KILN_MODELS_EAGER_ONLY"):  # --eager-only
        result["class"] = "EAGER_OK"
        return result

    kiln.config.strict = False
    counters = torch._dynamo.utils.counters
    counters.clear()
    start = time.perf_counter()
    try:
        first, second, after, messages, handed = _compiled_run(model, inputs, state0)
    except Exception as e:  # noqa: BLE001 - the compiled model raised where eager did not
        if _out_of_memory(e):
            result.update({"class": "SKIP", "skip": f"memory (compiled run): {_first_line(e)}"})
            return result
        result.update(compile_s=round(time.perf_counter() - start, 2), error=_first_line(e),
                      traceback=traceback.format_exc()[-3000:])
        result.update(_records(records.backend_records(), ()))
        try:
            _compiled_run(model, inputs, state0, backend="eager")
            result["class"] = "CRASH"
        except Exception as e2:  # noqa: BLE001
            result.update({"class": "DYNAMO", "dynamo_error": _first_line(e2)})
        return result
    result["compile_s"] = round(time.perf_counter() - start, 2)
    result["graph_breaks"] = sum(counters["graph_break"].values())
    result.update(_records(records.backend_records(), handed))
    result["call_fallbacks"] = [m[:400] for m in messages if "could not compile this graph" not in m]
    wrong = mismatch(first, expected, values=not random) or mismatch(second, expected, values=not random)
    if wrong and not random:  # rounding, or a wrong answer? Kiln's distance from a float64 run decides
        reference = float64_run(model, inputs, state0)
        result["float64_checked"] = "model" if reference is not None else None
        if reference is not None:
            wrong = mismatch(first, expected, reference=reference) or mismatch(second, expected, reference=reference)
        else:  # the model casts to float32 inside: each graph against its own float64 run
            far = graphs_far_from_float64(model, inputs, state0)
            result["float64_checked"] = "per graph" if far is not None else None
            wrong = (f"{wrong}; per graph: {far}" if far else None) if far is not None else wrong
    if wrong is None and not random:
        wrong = state_mismatch(model, state1)
    if wrong and not state_mismatch(model, state1):  # TorchDynamo's own answer (backend="eager") may differ
        dynamo_first = _compiled_run(model, inputs, state0, backend="eager")[0]
        if mismatch(dynamo_first, expected, values=not random) and not mismatch(first, dynamo_first, values=not random):
            result.update({"class": "DYNAMO", "wrong": None,
                           "dynamo_error": f"backend='eager' differs from eager too, Kiln gives its answer: {wrong}"})
            restore(model, state0)
            return result
    restore(model, state0)
    result["wrong"] = wrong
    if wrong:
        result["class"] = "WRONG"
    elif result["graphs"] == 0:
        result["class"] = "NO_GRAPH"
    elif result["refusals"] or result["call_fallbacks"]:
        result["class"] = "REFUSED"
    elif result["fallbacks"]:
        result["class"] = "FALLBACK"
    else:
        result["class"] = "OK"
    return result


def float64_run(model, inputs, state0):
    """The model's outputs in float64 (a copy of it, on float inputs upcast), or None when it cannot run so."""
    import copy

    try:
        double = copy.deepcopy(model).double()
        restore(double, {k: v.double() if v.is_floating_point() else v for k, v in state0.items()})
        return run_eager(double, {k: v.double() if v.is_floating_point() else v for k, v in inputs.items()})
    except Exception:  # noqa: BLE001 - some models insist on float32 somewhere
        return None


def graphs_far_from_float64(model, inputs, state0) -> str | None:
    """Each graph TorchDynamo hands over, compiled by Kiln and run eagerly on the same inputs, both
    compared with the graph run on its float inputs upcast to float64: '' when Kiln is about as close
    to it as eager everywhere (check.close_to_reference), else which graph output is not; None when
    some graph cannot run in float64."""
    import kiln

    from .compare import close_to_reference

    found, unusable = [], []

    def checking(gm, example_inputs):
        compiled = kiln.compile_fx(gm, example_inputs)

        def run(*args):
            got, expected = compiled(*args), gm(*args)
            try:
                ref = gm(*[a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args])
            except Exception:  # noqa: BLE001
                unusable.append(gm)
                return got
            for i, (g, e, r) in enumerate(zip(got, expected, ref)):
                if isinstance(e, torch.Tensor) and e.is_floating_point() and not torch.equal(g, e) \
                        and not close_to_reference(g, e, r):
                    found.append(f"graph {len(found)} output {i} {list(e.shape)}")
            return got
        return run

    torch._dynamo.reset()
    restore(model, state0)
    run_eager(torch.compile(model, backend=checking), inputs)
    restore(model, state0)
    torch._dynamo.reset()
    return None if unusable else ", ".join(found)


def _records(recs, handed) -> dict:
    """Counts from the back end's records: `graphs` are TorchDynamo's (handed to Kiln); the parts of
    graphs split at a data-dependent op are counted apart (`parts`), their refusals included."""
    mine = {id(gm) for gm in handed}
    top = [r for r in recs if id(r.graph()) in mine] if handed else recs
    refusals = [{"reason": r.reason[:600], "class": reason_class(r.reason), "function": r.function, "ops": r.ops,
                 "part": r not in top} for r in recs if not r.compiled]
    fallbacks = sorted({(f.op, f.reason) for r in recs if r.compiled for f in r.fallbacks})
    return {"graphs": len(handed) if handed else len(recs), "compiled": sum(r.compiled for r in top),
            "parts": len(recs) - len(top), "split": sum(r.split for r in top), "refusals": refusals,
            "fallbacks": [list(f) for f in fallbacks],
            "kernels": sum(r.kernels for r in recs if r.compiled)}
