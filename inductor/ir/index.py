"""Index expressions: affine sums of loop variables, plus floor-division and modulo.

Loop variables carry their extent, so simplification needs no context: (64*i + j) // 64 is
i when j < 64. This is all the algebra views need (reshape splits and merges dims); it is
linear in the expression size, with no sympy on the hot path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from kiln.prims.symbolic import NotConcrete, SizeExpr, divides, exact_div, nonneg, nonpos, provably_lt

# Extents, coefficients, divisors and constants are ints, or SizeExprs in a graph of symbolic sizes
# (prims/symbolic.py): then a simplification is made only where it holds for every size.


def _paren(a) -> str:
    if isinstance(a, Affine) and (len(a.terms) + (a.const != 0)) > 1:
        return f"({a!r})"
    if isinstance(a, SizeExpr) and (len(a.terms) > 1 or a.terms[0][1] != 1 or len(a.terms[0][0]) > 1):
        return f"({a!r})"
    return repr(a)


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
        return f"({_paren(self.arg)} // {_paren(self.div)})"


@dataclass(frozen=True, repr=False)
class Mod(IndexExpr):
    arg: "Affine"
    mod: int

    def __repr__(self):
        return f"({_paren(self.arg)} % {_paren(self.mod)})"


@dataclass(frozen=True, repr=False)
class Affine(IndexExpr):
    """sum(coeff * term) + const; terms are Sym, FloorDiv or Mod; no zero coefficients."""
    terms: tuple  # ((term, coeff), ...) in first-seen order
    const: int = 0

    def __repr__(self):
        parts = [repr(t) if c == 1 else f"{_paren(c)}*{t!r}" for t, c in self.terms]
        if self.const != 0 or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)


Index = IndexExpr


def affine(x) -> Affine:
    if isinstance(x, Affine):
        return x
    if isinstance(x, (int, SizeExpr)):
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
            return add(Affine(tuple((u, k) for u, k in coeffs.items() if k != 0), const), folded)
    # one canonical term order, so equal sums compare equal however they were built
    return simplify(Affine(tuple(sorted(((t, c) for t, c in coeffs.items() if c != 0), key=_order)), const))


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
    if c == 0 or coeffs.get(t) != c * k:
        return None
    del coeffs[t], coeffs[low]
    return scale(e if whole is None else mod(e, k * whole), c)


def scale(x, k: int):
    a = affine(x)
    if k == 0:
        return 0
    return simplify(Affine(tuple((t, c * k) for t, c in a.terms), a.const * k))


def bounds(x) -> tuple:
    """Inclusive (min, max) of an index expression; either may be None (unknown) with symbolic sizes."""
    if isinstance(x, (int, SizeExpr)):
        return x, x
    if isinstance(x, Sym):
        return 0, max(x.extent - 1, 0) if isinstance(x.extent, int) else x.extent - 1
    if isinstance(x, FloorDiv):
        lo, hi = bounds(x.arg)
        if not isinstance(x.div, int):  # hi + 1 == div * n gives hi // div == n - 1
            top = exact_div(hi + 1, x.div) if hi is not None else None
            return (0 if lo is not None and nonneg(lo) else None), (None if top is None else top - 1)
        return _fdiv(lo, x.div), _fdiv(hi, x.div)
    if isinstance(x, Mod):
        lo, hi = bounds(x.arg)
        if lo is not None and hi is not None and nonneg(lo) and provably_lt(hi, x.mod):
            return lo, hi
        return 0, x.mod - 1
    lo = hi = x.const
    for t, c in x.terms:
        tlo, thi = bounds(t)
        if nonneg(c):
            a, b = _mul(c, tlo), _mul(c, thi)
        elif nonpos(c):
            a, b = _mul(c, thi), _mul(c, tlo)
        else:
            return None, None
        lo = None if lo is None or a is None else lo + a
        hi = None if hi is None or b is None else hi + b
    return lo, hi


def _mul(c, v):
    return None if v is None else c * v


def _fdiv(v, k: int):
    if v is None:
        return None
    if isinstance(v, int):
        return v // k
    const = v.coeffs().get((), 0)
    q = exact_div(v - const, k)  # (k*q + c) // k == q + c // k
    return None if q is None else q + const // k


def _in_range(a, k) -> bool:
    """0 <= a < k for every value of a's variables and of the sizes."""
    lo, hi = bounds(a)
    return lo is not None and hi is not None and nonneg(lo) and provably_lt(hi, k)


def _sign_unknown(a) -> bool:
    """Symbolic sizes leave the sign of `a` open (a static index's bounds are always known)."""
    lo, _ = bounds(a)
    return lo is None or (isinstance(lo, SizeExpr) and not nonneg(lo))


def _nonneg_expr(a) -> bool:
    lo, _ = bounds(a)
    return lo is not None and nonneg(lo)


def _whole_part(a: Affine, k: int):
    """(q, r) with a == k*q + r, q the terms (and constant) that k divides, when there are any and
    r cannot be negative (C++ divides toward zero, so only non-negative parts move freely)."""
    q = tuple((t, exact_div(c, k)) for t, c in a.terms if divides(k, c))
    if isinstance(a.const, int) and isinstance(k, int):
        qc = a.const - a.const % k
    else:
        qc = a.const if divides(k, a.const) else 0
    if not q and qc == 0:
        return None
    r = Affine(tuple((t, c) for t, c in a.terms if not divides(k, c)), a.const - qc)
    if not _nonneg_expr(r):
        return None
    return simplify(Affine(q, exact_div(qc, k))), r


def _split(a: Affine, k: int):
    """(g, q, r) with a == g*q + r, g > 1 dividing k and 0 <= r < g, for the largest such g; else None.

    Terms with the largest coefficients go to q: (64*i + j) // 128 with j < 64 becomes i // 2."""
    if not isinstance(k, int) or not isinstance(a.const, int) or any(not isinstance(c, int) for _, c in a.terms):
        return _split_symbolic(a, k)
    terms = sorted(a.terms, key=lambda tc: -abs(tc[1]))
    g = k
    for n in range(len(terms) + 1):  # g only shrinks as q takes more terms
        if n:
            g = math.gcd(g, terms[n - 1][1])
        if g <= 1:
            return None
        rest = Affine(tuple(terms[n:]), a.const % g)
        if _in_range(rest, g):
            return g, Affine(tuple((t, c // g) for t, c in terms[:n]), a.const // g), rest
    return None


def _split_symbolic(a: Affine, k):
    """_split with symbolic sizes: g is a term's coefficient that divides k; q takes the terms g
    divides, and the rest must lie in [0, g) for every size ((ks1*i0 + i1) // (ks0*ks1) with
    i1 < ks1 becomes i0 // ks0)."""
    for _, g in a.terms:
        if g == 1 or not divides(g, k) or not nonneg(g):
            continue
        q = [(t, exact_div(c, g)) for t, c in a.terms if divides(g, c)]
        rest = Affine(tuple((t, c) for t, c in a.terms if not divides(g, c)), 0)
        qc = exact_div(a.const, g)
        if qc is None:
            rest = add(rest, a.const)
            qc = 0
        if _in_range(rest, g):
            return g, Affine(tuple(q), qc), rest
    return None


def floordiv(x, k: int):
    a = affine(x)
    if k == 0:  # only from views of empty tensors, which are never indexed
        return 0
    if k == 1:
        return simplify(a)
    if _in_range(a, k):
        return 0
    whole = _whole_part(a, k)
    if whole is not None:  # (k*q + r) // k == q + r // k
        q, r = whole
        return add(q, floordiv(r, k))
    split = _split(a, k)
    if split is not None:  # (g*q + r) // k == q // (k/g) when 0 <= r < g and g | k
        g, q, _ = split
        return floordiv(q, exact_div(k, g))
    if len(a.terms) == 1 and isinstance(a.terms[0][0], FloorDiv) and a.terms[0][1] == 1 and a.const == 0:
        inner = a.terms[0][0]
        return floordiv(inner.arg, inner.div * k)
    if _sign_unknown(a):  # C++ division truncates: only a non-negative index floors
        raise NotConcrete(f"({a!r}) // {k!r}: the sign of the index is unknown")
    return FloorDiv(a, k)


def mod(x, k: int):
    a = affine(x)
    if k in (0, 1):  # k == 0: only from views of empty tensors, which are never indexed
        return 0
    if _in_range(a, k):
        return simplify(a)
    whole = _whole_part(a, k)
    if whole is not None:  # (k*q + r) % k == r % k
        return mod(whole[1], k)
    split = _split(a, k)
    if split is not None:  # (g*q + r) % k == g*(q % (k/g)) + r when 0 <= r < g and g | k
        g, q, r = split
        return add(scale(mod(q, exact_div(k, g)), g), r)
    if _sign_unknown(a):
        raise NotConcrete(f"({a!r}) % {k!r}: the sign of the index is unknown")
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
        if s != 0:
            out = add(out, scale(i, s))
    return out


def as_strides(x, syms):
    """If x is affine in `syms` alone, (strides per sym, offset); else None."""
    a = affine(x)
    coeffs = dict(a.terms)
    if any(t not in syms for t in coeffs):
        return None
    return tuple(coeffs.get(s, 0) for s in syms), a.const
