"""The worker process: reads cases (one JSON object a line) on stdin, compiles and runs each one
through one entry point and target, and writes one JSON result a line.

    python -m tests.fuzz.worker --entry dynamo|capture --target cpp|triton

Each case is compiled once and called three times, each call on fresh inputs and compared with
eager on the same inputs: twice from `make_inputs()` (the second call reuses the compiled code),
then from `make_inputs_variant()` when the program has one (inputs that share memory differently,
for the guards). A float mismatch is checked again against a float64 run (check.compare). A
failure is run again with the captured graph interpreted (`interpret`), to tell the front end's
faults from the back end's. The protocol has its own file descriptor: whatever Kiln, torch or a
compiler prints goes to stderr.
"""
from __future__ import annotations

import argparse
import time
import warnings

from .check import compare, describe, run, stride_differs
from .runner import serve
from .program import aliasing_variant_source, namespace, upcast_source, without_dead_statements


ENTRIES = ("dynamo", "capture", "dynamo-dynamic", "capture-dynamic")


def compile_with(entry: str, backend="kiln"):
    """How the entry point compiles a function; backend=interpret runs the front end alone."""
    import torch

    import kiln

    front, _, dynamic = entry.partition("-")  # "dynamo-dynamic": every size symbolic (dynamic=True)
    if entry not in ENTRIES:
        raise ValueError(f"entry must be one of {', '.join(ENTRIES)}, got {entry!r}")
    flag = {"dynamic": True}.get(dynamic)
    if front == "dynamo":
        return lambda fn: torch.compile(fn, backend=backend, dynamic=flag)
    return lambda fn: kiln.compile(fn, backend=backend, dynamic=flag)


def interpret(gm, example_inputs):
    """A back end that runs the captured graph node by node with torch.fx.Interpreter (not through
    the code fx prints, as backend="eager" does): what the front end alone gives."""
    import torch.fx

    return lambda *args: torch.fx.Interpreter(gm).run(*args)


def run_case(case: dict, compile_fn, front_end_only=None) -> dict:
    """Run one case; on a failure, `front_end_only` (the entry point with the `interpret` back end)
    tells whether the front end alone fails the same way: then, under TorchDynamo, it is
    TorchDynamo's own behaviour with any back end (classified OK, reported as not Kiln's)."""
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mismatch, counts, first = _check(case, fn, compile_fn, calls, eager, variant)
    kiln_warnings = [w for w in caught if issubclass(w.category, (kiln.KilnCompileWarning, kiln.FallbackWarning))]
    backend = records.backend_records()
    first_eager = eager[calls[0][1]]
    result = {
        "id": case["id"],
        "class": mismatch.cls if mismatch else "OK",
        "kind": mismatch.kind if mismatch else "",
        "detail": mismatch.detail if mismatch else "",
        "fallbacks": sorted({str(w.message)[:600] for w in kiln_warnings}),  # reasons.reason_class groups them
        "graphs": len(backend),
        "graphs_eager": sum(1 for r in backend if not r.compiled),  # whole-graph fallbacks in the back end
        "graphs_op_fallback": sum(1 for r in backend if r.compiled and r.fallbacks),
        "aten_fallback_ops": sorted({op for r in backend for op in r.fallback_ops}),
        "strides": stride_differs(first_eager, first) if mismatch is None else [],
        **counts,  # rescued_by_reference, dead_error_dropped
        "eager_raised": describe(first_eager.error) if first_eager.error is not None else "",
    }
    torch._dynamo.reset()
    kiln.reset()
    if mismatch is not None and front_end_only is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alone, _, _ = _check(case, fn, front_end_only, calls, eager, variant)
        result["front_end_alone"] = alone is not None and (alone.cls, alone.kind) == (mismatch.cls, mismatch.kind)
        if result["front_end_alone"] and case.get("entry", "").startswith("dynamo"):
            result.update({"class": "OK", "kind": "", "detail": "", "not_kiln": mismatch.detail})
        torch._dynamo.reset()
        kiln.reset()
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _check(case, fn, compile_fn, calls, eager, variant):
    """Compile fn, make the calls, compare each with eager: (first mismatch, counts, first outcome).
    counts: calls that passed only against the float64 reference, and only without dead statements."""
    compiled = compile_fn(fn)
    got = [run(compiled, make) for _, make in calls]
    rescued = dropped = 0
    for (label, make), outcome in zip(calls, got):
        mismatch = compare(eager[make], outcome)
        if mismatch is not None and mismatch.kind == "no_error":
            mismatch = _dead_code_error(case["source"], make, outcome, mismatch)
            dropped += mismatch is None
        if mismatch is not None and mismatch.kind in ("values", "input"):
            mismatch = compare(eager[make], outcome, _reference(case["source"], make is variant))
            rescued += mismatch is None
        if mismatch is not None:
            break
    counts = {"rescued_by_reference": rescued, "dead_error_dropped": dropped}
    return (_labelled(mismatch, label) if mismatch is not None else None), counts, got[0]


def _dead_code_error(source, make, outcome, mismatch):
    """Kiln returned where eager raised. When eager raises only in statements whose results nothing
    reads, and the program without them gives Kiln's result, that is the documented decision
    (dead ops are dropped with their errors): not a failure. Else the mismatch stands."""
    live = without_dead_statements(source)
    if live is None:
        return mismatch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = run(namespace(live, "/fuzz/live.py")["fn"], make, record_dtypes=True)
    return mismatch if expected.error is not None or compare(expected, outcome) is not None else None


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
    parser.add_argument("--entry", choices=ENTRIES, required=True)
    parser.add_argument("--target", choices=("cpp", "triton"), required=True)
    args = parser.parse_args(argv)
    import kiln

    kiln.config.target = args.target
    compile_fn, front_end_only = compile_with(args.entry), compile_with(args.entry, interpret)

    def handle(case):
        case.setdefault("entry", args.entry)
        return run_case(case, compile_fn, front_end_only)

    serve(handle, describe)


if __name__ == "__main__":
    main()
