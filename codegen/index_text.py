"""Index expressions as source text, shared by the C++ and Triton renderers (they differ only in
the floor-division operator: index values are never negative, so C++'s `/` floors too)."""
from __future__ import annotations

from kiln.inductor.ir.index import Affine, FloorDiv, Mod, Sym
from kiln.prims.symbolic import SizeExpr


def _size(k) -> str:
    """A size, parenthesized when it is a symbolic sum or product (`/ (ks0*64)`)."""
    return f"({k!r})" if isinstance(k, SizeExpr) else str(k)


def index_text(x, div: str) -> str:
    if isinstance(x, (int, SizeExpr)):
        return _size(x)
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, FloorDiv):
        return f"(({index_text(x.arg, div)}) {div} {_size(x.div)})"
    if isinstance(x, Mod):
        return f"(({index_text(x.arg, div)}) % {_size(x.mod)})"
    assert isinstance(x, Affine)
    parts = [index_text(t, div) if c == 1 else f"{_size(c)}*{index_text(t, div)}" for t, c in x.terms]
    if x.const != 0 or not parts:
        parts.append(_size(x.const))
    return " + ".join(parts)
