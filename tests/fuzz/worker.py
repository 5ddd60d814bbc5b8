"""The worker process: reads cases (one JSON object a line) on stdin, compiles and runs each one
through one entry point and target, and writes one JSON result a line.

    python -m tests.fuzz.worker --entry dynamo|capture --target cpp|triton

Each case runs eagerly once and compiled twice (the second call reuses the compiled code), on
fresh inputs from `make_inputs()` each time. The protocol has its own file descriptor: whatever
Kiln, torch or a compiler prints goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings

from .check import compare, describe, run, stride_differs
from .program import aliasing_variant_source, namespace, upcast_source
from .reasons import reason_class


def compile_with(entry: str):
    import torch

    import kiln

    if entry == "dynamo":
        return lambda fn: torch.compile(fn, backend="kiln")
    if entry == "capture":
        return kiln.compile
    raise ValueError(f"entry must be 'dynamo' or 'capture', got {entry!r}")


def run_case(case: dict, compile_fn) -> dict:
    import torch

    import kiln
    from kiln import records

    start = time.perf_counter()
    ns = namespace(case["source"], f"/fuzz/program_{case['id']}.py")
    fn = ns["fn"]
    variant = aliasing_variant(ns)
    calls = [("", ns["make_inputs"]), ("second call", ns["make_inputs"])]
    calls += [("third call, inputs aliased differently", variant)] if variant is not None else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager's own warnings; Kiln's are recorded below
        eager = {make: run(fn, make, record_dtypes=True) for _, make in calls}
    compiled = compile_fn(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [run(compiled, make) for _, make in calls]
    mismatch, rescued = None, 0
    for (label, make), outcome in zip(calls, got):
        mismatch = compare(eager[make], outcome)
        if mismatch is not None and mismatch.kind in ("values", "input"):
            mismatch = compare(eager[make], outcome, _reference(case["source"], make is variant))
            rescued += mismatch is None
        if mismatch is not None:
            mismatch = _labelled(mismatch, label)
            break
    kiln_warnings = [w for w in caught if issubclass(w.category, (kiln.KilnCompileWarning, kiln.FallbackWarning))]
    backend = records.backend_records()
    first_eager = eager[calls[0][1]]
    result = {
        "id": case["id"],
        "class": mismatch.cls if mismatch else "OK",
        "kind": mismatch.kind if mismatch else "",
        "detail": mismatch.detail if mismatch else "",
        "fallbacks": sorted({reason_class(str(w.message)) for w in kiln_warnings}),
        "messages": [str(w.message)[:500] for w in kiln_warnings][:3],
        "graphs": len(backend),
        "aten_fallback_ops": sorted({op for r in backend for op in r.fallback_ops}),
        "strides": stride_differs(first_eager, got[0]) if mismatch is None else [],
        "rescued_by_reference": rescued,
        "eager_raised": describe(first_eager.error) if first_eager.error is not None else "",
        "seconds": round(time.perf_counter() - start, 3),
    }
    torch._dynamo.reset()
    kiln.reset()
    return result


def _reference(source: str, aliased_differently: bool):
    """The program run eagerly with float64 inputs (check.close_to_reference)."""
    ns = namespace(upcast_source(source), "/fuzz/reference.py")
    make = aliasing_variant(ns) if aliased_differently else ns["make_inputs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(ns["fn"], make) if make is not None else None


def _labelled(mismatch, label):
    return type(mismatch)(mismatch.cls, mismatch.kind, f"{label}: {mismatch.detail}" if label else mismatch.detail)


def aliasing_variant(ns: dict):
    """The program's `make_inputs_variant` (program.aliasing_variant_source), or None."""
    source = aliasing_variant_source(ns["make_inputs"]())
    if source is None:
        return None
    exec(source, ns)
    return ns["make_inputs_variant"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.worker")
    parser.add_argument("--entry", choices=("dynamo", "capture"), required=True)
    parser.add_argument("--target", choices=("cpp", "triton"), required=True)
    args = parser.parse_args(argv)
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints from compilers and kernels must not corrupt the protocol
    import kiln

    kiln.config.target = args.target
    compile_fn = compile_with(args.entry)
    for line in sys.stdin:
        case = json.loads(line)
        try:
            result = run_case(case, compile_fn)
        except Exception as e:  # noqa: BLE001  (the fuzzer's own bug: reported, never hidden)
            result = {"id": case["id"], "class": "ERROR", "kind": "harness", "detail": describe(e),
                      "traceback": traceback.format_exc()[-3000:]}
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
