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
from .program import namespace
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
    fn, make_inputs = ns["fn"], ns["make_inputs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager's own warnings; Kiln's are recorded below
        eager = run(fn, make_inputs)
    compiled = compile_fn(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = run(compiled, make_inputs)
        second = run(compiled, make_inputs)
        variant = aliasing_variant(make_inputs)
        if variant is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                eager_variant = run(fn, variant)
            third = run(compiled, variant)
    mismatch = compare(eager, first) or _labelled(compare(eager, second), "second call")
    if mismatch is None and variant is not None:
        mismatch = _labelled(compare(eager_variant, third), "third call, inputs aliased differently")
    kiln_warnings = [w for w in caught if issubclass(w.category, (kiln.KilnCompileWarning, kiln.FallbackWarning))]
    backend = records.backend_records()
    result = {
        "id": case["id"],
        "class": mismatch.cls if mismatch else "OK",
        "kind": mismatch.kind if mismatch else "",
        "detail": mismatch.detail if mismatch else "",
        "fallbacks": sorted({reason_class(str(w.message)) for w in kiln_warnings}),
        "messages": [str(w.message)[:500] for w in kiln_warnings][:3],
        "graphs": len(backend),
        "aten_fallback_ops": sorted({op for r in backend for op in r.fallback_ops}),
        "strides": stride_differs(eager, first) if mismatch is None else [],
        "eager_raised": describe(eager.error) if eager.error is not None else "",
        "seconds": round(time.perf_counter() - start, 3),
    }
    torch._dynamo.reset()
    kiln.reset()
    return result


def _labelled(mismatch, label):
    return mismatch if mismatch is None else type(mismatch)(mismatch.cls, mismatch.kind, f"{label}: {mismatch.detail}")


def aliasing_variant(make_inputs):
    """`make_inputs` with other memory sharing between the inputs, to check the guards: aliased
    inputs become separate copies; otherwise an input of the same shape, dtype and strides as an
    earlier one becomes that very tensor. None when neither applies."""
    import torch

    tensors = [(i, t) for i, t in enumerate(make_inputs()) if isinstance(t, torch.Tensor)]
    storage = {i: t.untyped_storage().data_ptr() for i, t in tensors if t.untyped_storage().nbytes()}
    if len(set(storage.values())) < len(storage):
        return lambda: [t.clone() if isinstance(t, torch.Tensor) else t for t in make_inputs()]
    for k, (j, b) in enumerate(tensors):
        for i, a in tensors[:k]:
            if (a.shape, a.dtype, a.stride()) == (b.shape, b.dtype, b.stride()):
                def shared(i=i, j=j):
                    inputs = make_inputs()
                    inputs[j] = inputs[i]
                    return inputs
                return shared
    return None


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
