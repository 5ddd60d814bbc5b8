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

import math
from dataclasses import dataclass
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
        if not isinstance(other, (int, SizeExpr)):
            return NotImplemented  # (an index expression adds a size: `start + i`)
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
        return q if q is not None else derived("floordiv", self, other)

    def __rfloordiv__(self, other):
        q = exact_div(other, self)
        return q if q is not None else derived("floordiv", other, self)

    def __mod__(self, other):
        return 0 if exact_div(self, other) is not None else derived("mod", self, other)

    def __rmod__(self, other):
        return 0 if exact_div(other, self) is not None else derived("mod", other, self)

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
        return not guarded(self, "==", f"the truth of size {self!r}")

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
            elif c == -1:
                parts.append(f"-{body}")
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
    if lower is not None:
        cs = [c for m, c in x.terms if m]
        at_lower = evaluate(x, lower)
        if all(c >= 0 for c in cs) and at_lower > 0:
            return 1
        if all(c <= 0 for c in cs) and at_lower < 0:
            return -1
    return 1 if any(sign(below) == 1 for below in _below_by_derived(x)) else None


def _lower_bounds(x) -> dict | None:
    """Each symbol's least value, or None when one may be negative (a Python int that is no size)."""
    lower = _SCOPES[-1].lower if _SCOPES else {}
    out = {s: lower.get(s, 0) for s in x.symbols()}
    return None if any(v is None for v in out.values()) else out


def nonneg(x: Size) -> bool:
    """x >= 0 for every value of the symbols."""
    if isinstance(x, int):
        return x >= 0
    lower = _lower_bounds(x)
    if lower is not None and all(c >= 0 for m, c in x.terms if m) and evaluate(x, lower) >= 0:
        return True
    return any(nonneg(below) for below in _below_by_derived(x))


def _below_by_derived(x: SizeExpr):
    """Polynomials L*x' (L > 0) with x' <= x: derived sizes in terms of their own replaced by bounds
    on the side that keeps x' below x (`a//c` in [(a - c + 1)/c, a/c], `a % c` in [0, min(c - 1, a)],
    `min(a, b) <= a`, `max(a, b) >= a`), scaled by L to stay polynomials; a proof that holds for one
    holds for x. Tried with and without replacing the terms of positive coefficient, and with either
    bound of a remainder."""
    by_name = _derived_by_name()
    if not any(len(m) == 1 and m[0] in by_name for m, _ in x.terms):
        return
    for both_sides in (False, True):
        for mod_by_value in (False, True):
            parts, scale, replaced = [], 1, False
            for m, c in x.terms:
                d = by_name.get(m[0]) if len(m) == 1 else None
                bound = None
                if d is not None and (c < 0 or both_sides):
                    bound = _derived_bound(d, upper=c < 0, mod_by_value=mod_by_value)
                if bound is None:
                    parts.append((SizeExpr.make({m: c}), 1))
                else:
                    parts.append((c * bound[0], bound[1]))
                    scale, replaced = scale * bound[1] // math.gcd(scale, bound[1]), True
            if replaced:
                yield sum((numerator * (scale // denominator) for numerator, denominator in parts), 0)


def _derived_bound(d: "DerivedSize", upper: bool, mod_by_value: bool):
    """(numerator, denominator): an upper (or lower) bound of a derived size, or None."""
    if d.op == "floordiv" and isinstance(d.b, int) and d.b >= 1:
        return (d.a, d.b) if upper else (d.a - d.b + 1, d.b)
    if d.op == "mod":
        if not upper:
            return 0, 1
        return (d.a, 1) if mod_by_value and nonneg(d.a) else (d.b - 1, 1)
    if d.op == "min" and upper:
        return d.a, 1
    if d.op == "max" and not upper:
        return d.a, 1
    return None


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
    return guarded(diff, ">" if strict else ">=", what)


def guarded(diff: Size, relation: str, what: str) -> bool:
    """`diff <relation> 0` (">", ">=", "==") decided at the example sizes and guarded: the front end
    checks the guard on every call and compiles again where it fails (the ShapeEnv's guards, as
    TorchInductor adds them), so the decision holds wherever the build runs. Without a guard sink
    (outside a compile of a front end's ShapeEnv, or inside a proof), NotConcrete."""
    decide = _SCOPES[-1].decide if _SCOPES else None
    if decide is None or _PROOFS_ONLY:
        raise NotConcrete(what)
    try:
        return decide(diff, relation)
    except NotConcrete:
        raise
    except Exception as e:  # noqa: BLE001  (a relation the ShapeEnv cannot decide)
        raise NotConcrete(f"{what} ({type(e).__name__}: {e})") from e


def differs(a: Size, b: Size) -> bool:
    """a != b for every size this build serves: provably, or guarded where the sizes differ at
    the example sizes. Where they are equal there, NotConcrete: sizes equal only by a guard would
    not be equal structurally downstream (`kd0 + 1` is no 1), so such sizes compile per size."""
    if a == b:
        return False
    if isinstance(a, int) and isinstance(b, int):
        return True
    if provably_lt(a, b) or provably_lt(b, a):
        return True
    if guarded(a - b, "==", f"{a!r} == {b!r}"):
        raise NotConcrete(f"{a!r} == {b!r} at these sizes")
    return True


_PROOFS_ONLY: list = []  # non-empty inside provably_*: a comparison never adds a guard there


def provably_lt(a: Size, b: Size) -> bool:
    """a < b for every value of the symbols (False when unknown; never a guard)."""
    _PROOFS_ONLY.append(True)
    try:
        return a < b
    except NotConcrete:
        return False
    finally:
        _PROOFS_ONLY.pop()


def provably_le(a: Size, b: Size) -> bool:
    _PROOFS_ONLY.append(True)
    try:
        return a <= b
    except NotConcrete:
        return False
    finally:
        _PROOFS_ONLY.pop()


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
    if len(b.terms) != 1:  # a polynomial divisor (kd0 + 1): a must be a monomial times it
        if a == 0:
            return 0
        if isinstance(a, int):
            return None
        lead_a, lead_b = max(a.terms, key=_degree), max(b.terms, key=_degree)
        q = exact_div(SizeExpr.make({lead_a[0]: lead_a[1]}), SizeExpr.make({lead_b[0]: lead_b[1]}))
        return q if q is not None and q * b == a else None
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


def _degree(term) -> tuple:
    return len(term[0]), term[0]


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
    op = _SYMPY_DERIVED.get(type(e).__name__)
    if op is not None:
        args = [_from_sympy(a) for a in e.args]
        if op in ("max", "min"):
            out = args[0]
            for a in args[1:]:
                out = derived(op, out, a)
            return out
        return args[0] // args[1] if op == "floordiv" else args[0] % args[1]
    raise NotConcrete(f"size {e} is not a polynomial in the size symbols")


# torch's sympy functions for integer sizes -> the derived-size op (torch.utils._sympy.functions)
_SYMPY_DERIVED = {"FloorDiv": "floordiv", "CleanDiv": "floordiv", "PythonMod": "mod", "Mod": "mod",
                  "Max": "max", "Min": "min"}


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


_SCOPES: list = []  # the hints_scopes entered, innermost last


class hints_scope:
    """Within it, `size_hint` evaluates sizes at these example values (heuristics only), each
    symbol is known to be at least its lower bound (proofs), sizes no polynomial spells are
    derived sizes of this scope (`derived`), and `decide(diff, relation)` (when given) decides
    and guards what no proof settles (`guarded`)."""

    def __init__(self, hints: dict, lower: dict | None = None, decide=None):
        self.hints, self.lower, self.decide = dict(hints), dict(lower or {}), decide
        self.derived: dict = {}  # (op, a, b) -> DerivedSize, in creation order
        self.derived_by_name: dict = {}  # kd0 -> DerivedSize

    def __enter__(self):
        _SCOPES.append(self)
        return self

    def __exit__(self, *exc):
        _SCOPES.pop()


# -- derived sizes: floor division, remainder, max, min of sizes ---------------------------------

@dataclass(frozen=True)
class DerivedSize:
    """A size no polynomial spells (a convolution's `(L - 3)//2`, `max(n, m)`), named `kd0`: a
    symbol of its own in the kernels' arguments, computed in the wrapper from the sizes it is made
    of (in creation order, so a derived size may use earlier ones)."""
    name: str
    op: str     # "floordiv" | "mod" | "max" | "min"
    a: object   # int | SizeExpr
    b: object

    def python(self) -> str:
        """Its definition as a Python expression over the symbols (the wrapper's line)."""
        if self.op in ("max", "min"):
            return f"{self.op}({self.a!r}, {self.b!r})"
        return f"({self.a!r}) {'//' if self.op == 'floordiv' else '%'} ({self.b!r})"

    def value(self, values: dict) -> int:
        a, b = evaluate(self.a, values), evaluate(self.b, values)
        return {"floordiv": lambda: a // b, "mod": lambda: a % b, "max": lambda: max(a, b),
                "min": lambda: min(a, b)}[self.op]()


DERIVED_PREFIX = "kd"


def derived(op: str, a: Size, b: Size) -> Size:
    """`a // b`, `a % b`, `max(a, b)` or `min(a, b)` as a derived size of the current scope (one per
    distinct definition). Division needs a divisor that is positive for every size; outside a
    compile's scope, or for a divisor that may be 0 or negative, NotConcrete."""
    if not _SCOPES:
        raise NotConcrete(f"{op} of sizes {a!r}, {b!r} outside a compile")
    if op in ("floordiv", "mod") and sign(b) != 1:
        raise NotConcrete(f"{op} of {a!r} by {b!r}, which may be 0 or negative")
    if op in ("max", "min"):  # max(1, n + 1) is n + 1 where n >= 0: no derived size
        if nonneg(a - b):
            return a if op == "max" else b
        if nonneg(b - a):
            return b if op == "max" else a
    scope = _SCOPES[-1]
    known = scope.derived.get((op, a, b))
    if known is None:
        known = scope.derived[(op, a, b)] = DerivedSize(f"{DERIVED_PREFIX}{len(scope.derived)}", op, a, b)
        scope.derived_by_name[known.name] = known
        lower = _derived_lower(op, a, b)
        scope.lower[known.name] = lower if lower is not None and lower >= 0 else None
        hints = scope.hints
        if all(s in hints for s in free_symbols((a, b))):
            hints[known.name] = known.value(hints)
    return size_var(known.name)


def _lower(x: Size) -> int | None:
    """The least value of x over every size, where it is x at the symbols' lower bounds."""
    if isinstance(x, int):
        return x
    lower = _lower_bounds(x)
    if lower is None or any(c < 0 for m, c in x.terms if m):
        return None
    return evaluate(x, lower)


def _derived_lower(op: str, a: Size, b: Size) -> int | None:
    la, lb = _lower(a), _lower(b)
    if op == "floordiv":
        return la // b if la is not None and isinstance(b, int) else (0 if la is not None and la >= 0 else None)
    if op == "mod":
        return 0  # a Python remainder by a positive divisor
    if op == "max":
        return max(v for v in (la, lb) if v is not None) if (la, lb) != (None, None) else None
    return min(la, lb) if la is not None and lb is not None else None


def to_sympy(x: Size, symbols: dict):
    """x as a sympy expression over the front end's symbols ({ks0: s0}); derived sizes as torch's
    FloorDiv / PythonMod / Max / Min of theirs."""
    import sympy

    if isinstance(x, int):
        return sympy.Integer(x)
    by_name = _derived_by_name()
    out = sympy.Integer(0)
    for m, c in x.terms:
        term = sympy.Integer(c)
        for name in m:
            d = by_name.get(name)
            if d is None:
                term = term * symbols[name]
                continue
            term = term * _derived_sympy(d.op, d.a, d.b, symbols)
        out = out + term
    return out


def _derived_sympy(op: str, a: Size, b: Size, symbols: dict):
    """The sympy form of a derived size's definition (torch's FloorDiv, PythonMod; Max, Min)."""
    import sympy
    from torch.utils._sympy.functions import FloorDiv, PythonMod

    function = {"floordiv": FloorDiv, "mod": PythonMod, "max": sympy.Max, "min": sympy.Min}[op]
    return function(to_sympy(a, symbols), to_sympy(b, symbols))


def derived_sizes() -> list[DerivedSize]:
    """The derived sizes of the current scope, in creation order."""
    return list(_SCOPES[-1].derived.values()) if _SCOPES else []


def _derived_by_name() -> dict:
    return _SCOPES[-1].derived_by_name if _SCOPES else {}


def size_hint(x: Size) -> int:
    """x at the example sizes of the graph being compiled: for choices that are right for any size
    (threads, tiles, loop order), never for what a kernel computes."""
    if isinstance(x, int):
        return x
    if not _SCOPES:
        raise NotConcrete(f"no example value for size {x!r}")
    return evaluate(x, _SCOPES[-1].hints)


def bare_symbol(x) -> str | None:
    """The symbol's name when x is one symbol alone (ks77), else None."""
    if isinstance(x, SizeExpr) and len(x.terms) == 1 and x.terms[0][1] == 1 and len(x.terms[0][0]) == 1:
        return x.terms[0][0][0]
    return None


def is_size(x) -> bool:
    """A valid size: a non-negative int, or a SizeExpr that is non-negative for every size."""
    return (isinstance(x, int) and not isinstance(x, bool) and x >= 0) or (isinstance(x, SizeExpr) and nonneg(x))
