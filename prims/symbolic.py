"""Symbolic sizes: polynomials in size symbols with integer coefficients.

A graph traced with symbolic shapes (TorchDynamo's SymInts) carries its sizes through the back end
as `SizeExpr`s: `ks0*64 + 1`. They add, subtract and multiply; they divide only exactly; they
compare only where the answer holds for every value of the symbols (each symbol is a size, >= 0).
Anything else (a branch on a size, `int(size)`, a range over a size) raises `NotConcrete`: the
caller then compiles the graph for concrete sizes instead, so a decision made for one size is never
reused for another. A polynomial with no symbols is a plain int, so static graphs never see one.

The same text is valid C++ and Python: `ks0*ks1 + 3` names the symbols' variables in a kernel's
arguments and in the wrapper.
"""
from __future__ import annotations

from typing import Union


class NotConcrete(Exception):
    """A decision needed a concrete value of a symbolic size."""


Monomial = tuple  # sorted symbol names, repeated for powers; () is the constant term


class SizeExpr:
    __slots__ = ("terms", "_hash")

    def __init__(self, terms: tuple):
        self.terms = terms  # ((monomial, coeff), ...) sorted by monomial, no zero coeffs, >= 1 non-constant
        self._hash = hash(terms)

    # -- construction --
    @staticmethod
    def make(coeffs: dict) -> "Size":
        terms = tuple(sorted((m, c) for m, c in coeffs.items() if c))
        if not terms:
            return 0
        if len(terms) == 1 and terms[0][0] == ():
            return terms[0][1]
        return SizeExpr(terms)

    def coeffs(self) -> dict:
        return dict(self.terms)

    # -- arithmetic --
    def __add__(self, other):
        out = self.coeffs()
        for m, c in _terms(other):
            out[m] = out.get(m, 0) + c
        return SizeExpr.make(out)

    __radd__ = __add__

    def __neg__(self):
        return SizeExpr.make({m: -c for m, c in self.terms})

    def __sub__(self, other):
        return self + (-other if isinstance(other, (int, SizeExpr)) else _bad(other))

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, int):
            return SizeExpr.make({m: c * other for m, c in self.terms})
        if not isinstance(other, SizeExpr):
            return NotImplemented
        out: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2))
                out[m] = out.get(m, 0) + c1 * c2
        return SizeExpr.make(out)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        q = exact_div(self, other)
        if q is None:
            raise NotConcrete(f"({self!r}) // {other!r} is not exact")
        return q

    def __rfloordiv__(self, other):
        q = exact_div(other, self)
        if q is None:
            raise NotConcrete(f"{other!r} // ({self!r}) is not exact")
        return q

    def __mod__(self, other):
        if exact_div(self, other) is None:
            raise NotConcrete(f"({self!r}) % {other!r} depends on the sizes")
        return 0

    def __rmod__(self, other):
        if exact_div(other, self) is None:
            raise NotConcrete(f"{other!r} % ({self!r}) depends on the sizes")
        return 0

    # -- comparison: structural equality; order only where provable --
    def __eq__(self, other):
        return isinstance(other, SizeExpr) and self.terms == other.terms

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return self._hash

    def __lt__(self, other):
        return _decide(other - self, strict=True, what=f"{self!r} < {other!r}")

    def __le__(self, other):
        return _decide(other - self, strict=False, what=f"{self!r} <= {other!r}")

    def __gt__(self, other):
        return _decide(self - other, strict=True, what=f"{self!r} > {other!r}")

    def __ge__(self, other):
        return _decide(self - other, strict=False, what=f"{self!r} >= {other!r}")

    def __bool__(self):
        raise NotConcrete(f"the truth of size {self!r}")

    def __int__(self):
        raise NotConcrete(f"a concrete value of size {self!r}")

    __index__ = __int__

    def __float__(self):
        raise NotConcrete(f"a concrete value of size {self!r}")

    def __repr__(self):
        parts = []
        for m, c in reversed(self.terms):  # highest-degree terms first
            body = "*".join(m)
            if not m:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            else:
                parts.append(f"{c}*{body}")
        return " + ".join(parts).replace("+ -", "- ")

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self)

    def symbols(self) -> set:
        return {s for m, _ in self.terms for s in m}


Size = Union[int, SizeExpr]


def _bad(x):
    raise TypeError(f"unsupported size operand {type(x).__name__}")


def _terms(x) -> tuple:
    if isinstance(x, SizeExpr):
        return x.terms
    if isinstance(x, int):
        return (((), x),) if x else ()
    return _bad(x)


def is_symbolic(x) -> bool:
    return isinstance(x, SizeExpr)


def size_var(name: str) -> SizeExpr:
    return SizeExpr((((name,), 1),))


def sign(x: Size) -> int | None:
    """1 if x > 0, -1 if x < 0 for every value of the symbols, else None (0 for the constant 0).
    Each symbol is at least its lower bound (0, or the front end's: TorchDynamo guards a symbolic
    size >= 2); a polynomial whose non-constant coefficients share a sign is extreme there."""
    if isinstance(x, int):
        return (x > 0) - (x < 0)
    lower = _lower_bounds(x)
    if lower is None:
        return None
    cs = [c for m, c in x.terms if m]
    at_lower = evaluate(x, lower)
    if all(c >= 0 for c in cs) and at_lower > 0:
        return 1
    if all(c <= 0 for c in cs) and at_lower < 0:
        return -1
    return None


def _lower_bounds(x) -> dict | None:
    """Each symbol's least value, or None when one may be negative (a Python int that is no size)."""
    lower = _LOWER[-1] if _LOWER else {}
    out = {s: lower.get(s, 0) for s in x.symbols()}
    return None if any(v is None for v in out.values()) else out


def nonneg(x: Size) -> bool:
    """x >= 0 for every value of the symbols."""
    if isinstance(x, int):
        return x >= 0
    lower = _lower_bounds(x)
    return lower is not None and all(c >= 0 for m, c in x.terms if m) and evaluate(x, lower) >= 0


def nonpos(x: Size) -> bool:
    return nonneg(-x)


def _decide(diff: Size, strict: bool, what: str) -> bool:
    """diff > 0 (strict) or diff >= 0, when that holds or fails for every value of the symbols."""
    if isinstance(diff, int):
        return diff > 0 if strict else diff >= 0
    if strict:
        if sign(diff) == 1:
            return True
        if nonpos(diff):
            return False
    else:
        if nonneg(diff):
            return True
        if sign(diff) == -1:
            return False
    raise NotConcrete(what)


def provably_lt(a: Size, b: Size) -> bool:
    """a < b for every value of the symbols (False when unknown)."""
    try:
        return a < b
    except NotConcrete:
        return False


def provably_le(a: Size, b: Size) -> bool:
    try:
        return a <= b
    except NotConcrete:
        return False


def exact_div(a: Size, b: Size) -> Size | None:
    """a / b when b divides a for every value of the symbols (as polynomials), else None."""
    if isinstance(b, int):
        if b == 0:
            return None
        if isinstance(a, int):
            return a // b if a % b == 0 else None
        if all(c % b == 0 for _, c in a.terms):
            return SizeExpr.make({m: c // b for m, c in a.terms})
        return None
    if len(b.terms) != 1:  # only a monomial divisor (c * s0*s1); enough for sizes and strides
        return a if a == b else (0 if a == 0 else None)
    (bm, bc), = b.terms
    out = {}
    for m, c in _terms(a):
        rest = list(m)
        for s in bm:
            if s not in rest:
                return None
            rest.remove(s)
        if c % bc:
            return None
        out[tuple(rest)] = c // bc
    return SizeExpr.make(out)


def divides(k: Size, x: Size) -> bool:
    return exact_div(x, k) is not None


def gcd(a: Size, b: Size) -> Size:
    """A common divisor of a and b (the gcd for ints; for polynomials the common integer content)."""
    import math

    if isinstance(a, int) and isinstance(b, int):
        return math.gcd(a, b)
    return math.gcd(_content(a), _content(b))


def _content(x: Size) -> int:
    import math

    if isinstance(x, int):
        return x
    g = 0
    for _, c in x.terms:
        g = math.gcd(g, c)
    return g


def evaluate(x: Size, values: dict) -> int:
    """x's value for symbol values {name: int}."""
    if isinstance(x, int):
        return x
    total = 0
    for m, c in x.terms:
        v = c
        for s in m:
            v *= values[s]
        total += v
    return total


def hint(x: Size, hints: dict) -> int:
    """x at the example sizes, for heuristics only (thread counts, tile sizes), never for a result."""
    return evaluate(x, hints)


def free_symbols(xs) -> set:
    out = set()
    for x in xs:
        if isinstance(x, SizeExpr):
            out |= x.symbols()
    return out


# -- from TorchDynamo's SymInts ------------------------------------------------------------------

SYMBOL_PREFIX = "k"  # ks0: a kernel argument / wrapper variable named apart from Kiln's own names


def from_sym(x):
    """A SymInt (or int) as an int or SizeExpr; NotConcrete for sizes no polynomial spells
    (floor division, max, ...), which then compile per concrete size."""
    import torch

    if isinstance(x, torch.SymInt):
        node = x.node
        expr = node.expr
        if node.shape_env is not None:
            expr = node.shape_env.replace(expr)
        if expr.is_number:
            return int(expr)
        return _from_sympy(expr)
    if isinstance(x, (torch.SymFloat, torch.SymBool)):
        raise NotConcrete(f"symbolic {type(x).__name__} {x}")
    return x


def _from_sympy(e):
    import sympy

    if isinstance(e, sympy.Symbol):
        return size_var(SYMBOL_PREFIX + e.name)
    if isinstance(e, sympy.Integer):
        return int(e)
    if isinstance(e, sympy.Add):
        out = 0
        for a in e.args:
            out = out + _from_sympy(a)
        return out
    if isinstance(e, sympy.Mul):
        out = 1
        for a in e.args:
            out = out * _from_sympy(a)
        return out
    if isinstance(e, sympy.Pow) and isinstance(e.exp, sympy.Integer) and int(e.exp) >= 1:
        base, out = _from_sympy(e.base), 1
        for _ in range(int(e.exp)):
            out = out * base
        return out
    raise NotConcrete(f"size {e} is not a polynomial in the size symbols")


def _var_to_val(shape_env) -> dict:
    values = getattr(shape_env, "backed_var_to_val", None)  # torch >= 2.10 (var_to_val is deprecated)
    return values if values is not None else shape_env.var_to_val


def symbol_hints(shape_env) -> dict:
    """{ks0: value} for every backed symbol of a ShapeEnv (the example sizes)."""
    return {SYMBOL_PREFIX + str(s): int(v) for s, v in _var_to_val(shape_env).items()}


def symbol_lower_bounds(shape_env) -> dict:
    """{ks0: the least value the front end's guards allow} (2 for TorchDynamo's symbolic sizes)."""
    out = {}
    for s, r in shape_env.var_to_range.items():
        try:
            lower = int(r.lower)
        except Exception:  # noqa: BLE001  (-oo: an int that is no size)
            lower = None
        out[SYMBOL_PREFIX + str(s)] = lower if lower is not None and lower >= 0 else None
    return out


_HINTS: list[dict] = []
_LOWER: list[dict] = []


class hints_scope:
    """Within it, `size_hint` evaluates sizes at these example values (heuristics only), and each
    symbol is known to be at least its lower bound (proofs)."""

    def __init__(self, hints: dict, lower: dict | None = None):
        self.hints, self.lower = hints, lower or {}

    def __enter__(self):
        _HINTS.append(self.hints)
        _LOWER.append(self.lower)

    def __exit__(self, *exc):
        _HINTS.pop()
        _LOWER.pop()


def size_hint(x: Size) -> int:
    """x at the example sizes of the graph being compiled: for choices that are right for any size
    (threads, tiles, loop order), never for what a kernel computes."""
    if isinstance(x, int):
        return x
    if not _HINTS:
        raise NotConcrete(f"no example value for size {x!r}")
    return evaluate(x, _HINTS[-1])


def bare_symbol(x) -> str | None:
    """The symbol's name when x is one symbol alone (ks77), else None."""
    if isinstance(x, SizeExpr) and len(x.terms) == 1 and x.terms[0][1] == 1 and len(x.terms[0][0]) == 1:
        return x.terms[0][0][0]
    return None


def is_size(x) -> bool:
    """A valid size: a non-negative int, or a SizeExpr that is non-negative for every size."""
    return (isinstance(x, int) and not isinstance(x, bool) and x >= 0) or (isinstance(x, SizeExpr) and nonneg(x))
