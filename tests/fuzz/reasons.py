"""Fallback reasons: a Kiln warning's message, normalised into a reason class for the budget.

The table is tried in order; the first pattern found in the message names the class. A message
no pattern knows keeps its exception type and first words, with numbers and names blanked, so
new reasons still group.
"""
from __future__ import annotations

import re

REASONS = [
    # Kiln's own bugs, caught by the back end and run eagerly
    (r"g\+\+ failed", "g++ rejected the generated C++ (a codegen bug)"),
    (r"decomposition of \S+ gave", "a decomposition gave another shape or dtype than the op (a Kiln bug)"),
    # not supported (yet)
    (r"[Cc]omplex|view_as_real", "complex dtypes on this target"),
    (r"Half|BFloat16|float16|bfloat16", "float16/bfloat16 on this target"),
    (r"SymInt|SymFloat|SymBool|symbolic|sympy", "symbolic (SymInt/SymFloat) inputs or sizes"),
    (r"item\(\)|_local_scalar_dense", "a value read from a tensor (.item(), x[0-dim integer tensor])"),
    (r"data-dependent|nonzero|masked_select|DataDependent", "an output shape that depends on values (boolean mask)"),
    (r"inputs require grad", "inputs require grad"),
    (r"broadcast view|more than one element of the written-to tensor|internal overlap|expanded",
     "write through a broadcast (expanded) view"),
    (r"no inverse known", "a write through a view op with no known inverse (unfold)"),
    (r"hidden alias", "an input aliased in a way the op schemas do not say (hidden alias)"),
    (r"recompile_limit|recompil", "recompile limit"),
    (r"changes a tensor's storage|resize_|beyond the tensor's own elements|\bset_\b", "resize_/set_: a write to a tensor's storage, not its values"),
    (r"has no functional variant", "an in-place op with no functional variant"),
    (r"data is not allocated yet", "an op that reads tensor data while tracing (fake tensors cannot)"),
    (r"no lowering|has no lowering", "prim without a lowering"),
    (r"dtype", "unsupported dtype"),
]
_COMPILED = [(re.compile(p), name) for p, name in REASONS]
_NOISE = re.compile(r"\b(?:\d+|0x[0-9a-f]+|v\d+|x\d+|buf\d+|arg\d+_\d+|l_\w+_)\b")


def reason_class(message: str) -> str:
    for pattern, name in _COMPILED:
        if pattern.search(message):
            return name
    inner = re.search(r"\((\w+(?:Error|Exception|Unsupported|Graph)\w*): ([^\n]*)", message)
    text = f"{inner.group(1)}: {inner.group(2)}" if inner else message.removeprefix("kiln: ")
    return _NOISE.sub("N", text)[:90].strip()
