"""Index expressions: affine sums of loop variables, plus floor-division and modulo.

Loop variables carry their extent, so simplification needs no context: (64*i + j) // 64 is
i when j < 64. This is all the algebra views need (reshape splits and merges dims); it is
linear in the expression size, with no sympy on the hot path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _paren(a) -> str:
    return f"({a!r})" if isinstance(a, Affine) and (len(a.terms) + bool(a.const)) > 1 else repr(a)


class IndexExpr:
    __slots__ = ()

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __mul__(self, k):
        return scale(self, k)

    __rmul__ = __mul__

    def __floordiv__(self, k):
        return floordiv(self, k)

    def __mod__(self, k):
        return mod(self, k)


@dataclass(frozen=True, repr=False)
class Sym(IndexExpr):
    """A loop variable in [0, extent)."""
    name: str
    extent: int

    def __repr__(self):
        return self.name


@dataclass(frozen=True, repr=False)
class FloorDiv(IndexExpr):
    arg: "Affine"
    div: int

    def __repr__(self):
        return f"({_paren(self.arg)} // {self.div})"


@dataclass(frozen=True, repr=False)
class Mod(IndexExpr):
    arg: "Affine"
    mod: int

    def __repr__(self):
        return f"({_paren(self.arg)} % {self.mod})"


@dataclass(frozen=True, repr=False)
class Affine(IndexExpr):
    """sum(coeff * term) + const; terms are Sym, FloorDiv or Mod; no zero coefficients."""
    terms: tuple  # ((term, coeff), ...) in first-seen order
    const: int = 0

    def __repr__(self):
        parts = [repr(t) if c == 1 else f"{c}*{t!r}" for t, c in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)


Index = IndexExpr


def affine(x) -> Affine:
    if isinstance(x, Affine):
        return x
    if isinstance(x, int):
        return Affine((), x)
    if isinstance(x, Sym) and x.extent == 1:  # the only value is 0
        return Affine((), 0)
    return Affine(((x, 1),), 0)


def simplify(x):
    """An Affine of a single unit term (or a constant) back to that term (or int)."""
    a = affine(x)
    if not a.terms:
        return a.const
    if len(a.terms) == 1 and a.const == 0 and a.terms[0][1] == 1:
        return a.terms[0][0]
    return a


def add(x, y):
    a, b = affine(x), affine(y)
    coeffs: dict = dict(a.terms)
    for t, c in b.terms:
        coeffs[t] = coeffs.get(t, 0) + c
    const = a.const + b.const
    for t in [t for t in coeffs if isinstance(t, (FloorDiv, Mod))]:
        folded = _fold_pair(t, coeffs)
        if folded is not None:
            return add(Affine(tuple((u, k) for u, k in coeffs.items() if k), const), folded)
    # one canonical term order, so equal sums compare equal however they were built
    return simplify(Affine(tuple(sorted(((t, c) for t, c in coeffs.items() if c), key=_order)), const))


def _order(term_coeff) -> tuple:
    t, _ = term_coeff
    return (0, t.name) if isinstance(t, Sym) else (1, repr(t))


def _fold_pair(t, coeffs: dict):
    """Fold t with a matching `e % k` term out of coeffs (removing both), as reshapes that split a
    dim and merge it back leave them; None if there is none:
        k*c*(e // k)       + c*(e % k) == c*e
        k*c*((e // k) % q) + c*(e % k) == c*(e % (k*q))"""
    if isinstance(t, FloorDiv):
        e, k, whole = t.arg, t.div, None
    elif len(t.arg.terms) == 1 and not t.arg.const and t.arg.terms[0][1] == 1 and isinstance(t.arg.terms[0][0], FloorDiv):
        inner = t.arg.terms[0][0]
        e, k, whole = inner.arg, inner.div, t.mod
    else:
        return None
    low = Mod(e, k)
    c = coeffs.get(low, 0)
    if not c or coeffs.get(t) != c * k:
        return None
    del coeffs[t], coeffs[low]
    return scale(e if whole is None else mod(e, k * whole), c)


def scale(x, k: int):
    a = affine(x)
    if k == 0:
        return 0
    return simplify(Affine(tuple((t, c * k) for t, c in a.terms), a.const * k))


def bounds(x) -> tuple[int, int]:
    """Inclusive (min, max) of an index expression."""
    if isinstance(x, int):
        return x, x
    if isinstance(x, Sym):
        return 0, max(x.extent - 1, 0)
    if isinstance(x, FloorDiv):
        lo, hi = bounds(x.arg)
        return lo // x.div, hi // x.div
    if isinstance(x, Mod):
        lo, hi = bounds(x.arg)
        return (lo, hi) if 0 <= lo and hi < x.mod else (0, x.mod - 1)
    lo = hi = x.const
    for t, c in x.terms:
        tlo, thi = bounds(t)
        lo, hi = lo + min(c * tlo, c * thi), hi + max(c * tlo, c * thi)
    return lo, hi


def _whole_part(a: Affine, k: int):
    """(q, r) with a == k*q + r, q the terms (and constant) that k divides, when there are any and
    r cannot be negative (C++ divides toward zero, so only non-negative parts move freely)."""
    q = tuple((t, c // k) for t, c in a.terms if c % k == 0)
    qc = a.const - a.const % k
    if not q and not qc:
        return None
    r = Affine(tuple((t, c) for t, c in a.terms if c % k), a.const % k)
    if bounds(r)[0] < 0:
        return None
    return simplify(Affine(q, qc // k)), r


def _split(a: Affine, k: int):
    """(g, q, r) with a == g*q + r, g > 1 dividing k and 0 <= r < g, for the largest such g; else None.

    Terms with the largest coefficients go to q: (64*i + j) // 128 with j < 64 becomes i // 2."""
    terms = sorted(a.terms, key=lambda tc: -abs(tc[1]))
    g = k
    for n in range(len(terms) + 1):  # g only shrinks as q takes more terms
        if n:
            g = math.gcd(g, terms[n - 1][1])
        if g <= 1:
            return None
        rest = Affine(tuple(terms[n:]), a.const % g)
        lo, hi = bounds(rest)
        if 0 <= lo and hi < g:
            return g, Affine(tuple((t, c // g) for t, c in terms[:n]), a.const // g), rest
    return None


def floordiv(x, k: int):
    a = affine(x)
    if k == 0:  # only from views of empty tensors, which are never indexed
        return 0
    if k == 1:
        return simplify(a)
    lo, hi = bounds(a)
    if 0 <= lo and hi < k:
        return 0
    whole = _whole_part(a, k)
    if whole is not None:  # (k*q + r) // k == q + r // k
        q, r = whole
        return add(q, floordiv(r, k))
    split = _split(a, k)
    if split is not None:  # (g*q + r) // k == q // (k/g) when 0 <= r < g and g | k
        g, q, _ = split
        return floordiv(q, k // g)
    if len(a.terms) == 1 and isinstance(a.terms[0][0], FloorDiv) and a.terms[0][1] == 1 and a.const == 0:
        inner = a.terms[0][0]
        return floordiv(inner.arg, inner.div * k)
    return FloorDiv(a, k)


def mod(x, k: int):
    a = affine(x)
    if k in (0, 1):  # k == 0: only from views of empty tensors, which are never indexed
        return 0
    lo, hi = bounds(a)
    if 0 <= lo and hi < k:
        return simplify(a)
    whole = _whole_part(a, k)
    if whole is not None:  # (k*q + r) % k == r % k
        return mod(whole[1], k)
    split = _split(a, k)
    if split is not None:  # (g*q + r) % k == g*(q % (k/g)) + r when 0 <= r < g and g | k
        g, q, r = split
        return add(scale(mod(q, k // g), g), r)
    return Mod(a, k)


def substitute(x, mapping: dict):
    """Replace Syms by other index expressions (renaming loop variables, fusing kernels)."""
    if isinstance(x, int):
        return x
    if isinstance(x, Sym):
        return mapping.get(x, x)
    if isinstance(x, FloorDiv):
        return floordiv(substitute(x.arg, mapping), x.div)
    if isinstance(x, Mod):
        return mod(substitute(x.arg, mapping), x.mod)
    out = x.const
    for t, c in x.terms:
        out = add(out, scale(substitute(t, mapping), c))
    return out


def syms_of(x) -> set:
    if isinstance(x, int):
        return set()
    if isinstance(x, Sym):
        return {x}
    if isinstance(x, (FloorDiv, Mod)):
        return syms_of(x.arg)
    out = set()
    for t, _ in x.terms:
        out |= syms_of(t)
    return out


def strided_index(idx, strides, offset=0):
    """sum(idx[d] * strides[d]) + offset, skipping size-1 and zero-stride dims."""
    out = offset
    for i, s in zip(idx, strides):
        if s:
            out = add(out, scale(i, s))
    return out


def as_strides(x, syms):
    """If x is affine in `syms` alone, (strides per sym, offset); else None."""
    a = affine(x)
    coeffs = dict(a.terms)
    if any(t not in syms for t in coeffs):
        return None
    return tuple(coeffs.get(s, 0) for s in syms), a.const
