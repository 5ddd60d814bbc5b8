"""Index expressions as source text, shared by the C++ and Triton renderers (they differ only in
the floor-division operator: index values are never negative, so C++'s `/` floors too)."""
from __future__ import annotations

from kiln.inductor.ir.index import Affine, FloorDiv, Mod, Sym
from kiln.prims.symbolic import SizeExpr


def size_text(k) -> str:
    """A size, parenthesized when it is a symbolic sum or product (`/ (ks0*64)`)."""
    return f"({k!r})" if isinstance(k, SizeExpr) else str(k)


def index_text(x, div: str) -> str:
    if isinstance(x, (int, SizeExpr)):
        return size_text(x)
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, FloorDiv):
        return f"(({index_text(x.arg, div)}) {div} {size_text(x.div)})"
    if isinstance(x, Mod):
        return f"(({index_text(x.arg, div)}) % {size_text(x.mod)})"
    assert isinstance(x, Affine)
    parts = [index_text(t, div) if c == 1 else f"{size_text(c)}*{index_text(t, div)}" for t, c in x.terms]
    if x.const != 0 or not parts:
        parts.append(size_text(x.const))
    return " + ".join(parts)
