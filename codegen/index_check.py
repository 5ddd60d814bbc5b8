"""Data-dependent errors: out-of-range indices (gather, index_select, x[idx], embedding, take,
...) and integer division or remainder by zero (//, %, fmod, div(rounding_mode=...)).

Eager raises on them; a compiled kernel cannot raise. So every such index goes through a
CHECK_INDEX loop op, every integer divisor through CHECK_DIVISOR (loop.ERROR_CHECKS): a bad
index reads element 0 instead (kernels never read out of bounds), a zero divisor divides by 1
(no SIGFPE), and either sets an error flag (C++: a flag in the .so, read and cleared by `kiln_take_index_error()`;
Triton: a one-element int32 buffer stored to under a mask). After the kernels, the wrapper reads
the flag: when it is set, it returns nothing it computed and copies nothing back into the inputs,
and runs the original graph eagerly instead, which raises eager's own error (or, should it not
raise, returns eager's result, right by definition).
"""
from __future__ import annotations

from kiln.inductor.ir import loop as L

FLAG_READER = "kiln_index_error"  # wrapper global: () -> bool, true once since the last call; clears the flag
ON_ERROR = "kiln_on_index_error"  # wrapper global: (*inputs) -> the flat outputs, by running eagerly


def kernel_checks_indices(kernel) -> bool:
    """Does the kernel hold an error check (an index or an integer divisor) and so take the flag?"""
    return any(m.op in L.ERROR_CHECKS for n in kernel.nodes for m in L.walk(n.body))


def checks_indices(kernels) -> bool:
    return any(kernel_checks_indices(k) for k in kernels)


def wrapper_lines(backend, params: str) -> list[str]:
    """Lines of `call` after the last kernel and before any input copy-back."""
    if not getattr(backend, "checks_indices", False):
        return []
    return [f"    if {FLAG_READER}():  # a kernel met a bad index or a zero divisor: eager raises its own error",
            f"        return {ON_ERROR}({params})"]


def no_eager_graph(*inputs):
    raise IndexError("index out of range or integer division by zero (found by a compiled Kiln kernel)")


def guard(call, backend, on_error):
    """`call`, made to defer to `on_error` when a later step fails (an extern fed by a bad gather's
    stand-in values, say) after a kernel flagged a bad index: eager's error is the one to see."""
    if not getattr(backend, "checks_indices", False):
        return call
    read_flag = backend.globals()[FLAG_READER]

    def guarded(*inputs):
        try:
            return call(*inputs)
        except Exception:
            if not read_flag():
                raise
        return on_error(*inputs)

    return guarded
