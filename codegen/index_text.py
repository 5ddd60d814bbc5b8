"""Index expressions as source text, shared by the C++ and Triton renderers (they differ only in
the floor-division operator: index values are never negative, so C++'s `/` floors too)."""
from __future__ import annotations

from kiln.inductor.ir.index import Affine, FloorDiv, Mod, Sym


def index_text(x, div: str) -> str:
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, FloorDiv):
        return f"(({index_text(x.arg, div)}) {div} {x.div})"
    if isinstance(x, Mod):
        return f"(({index_text(x.arg, div)}) % {x.mod})"
    assert isinstance(x, Affine)
    parts = [index_text(t, div) if c == 1 else f"{c}*{index_text(t, div)}" for t, c in x.terms]
    if x.const or not parts:
        parts.append(str(x.const))
    return " + ".join(parts)
