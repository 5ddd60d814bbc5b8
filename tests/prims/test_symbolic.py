"""SizeExpr (prims/symbolic.py) and the index algebra over symbolic sizes (inductor/ir/index.py):
arithmetic is exact, a decision is made only where it holds for every size, anything else raises
NotConcrete (the graph then compiles per concrete size)."""
import pytest

from kiln.inductor.ir.index import Sym, add, bounds, floordiv, mod, scale
from kiln.prims.symbolic import (NotConcrete, SizeExpr, evaluate, exact_div, hints_scope, is_size, nonneg, sign,
                                 size_hint, size_var)

a, b = size_var("ks0"), size_var("ks1")


def test_arithmetic_is_polynomial_and_canonical():
    e = a * 64 + b * a
    assert e == 64 * a + a * b
    assert repr(e) == "ks0*ks1 + 64*ks0"
    assert (e - e) == 0 and isinstance(e - 64 * a, SizeExpr)
    assert evaluate(e * 2 - 1, {"ks0": 3, "ks1": 5}) == 2 * (3 * 5 + 64 * 3) - 1
    assert (a * 64) // 64 == a and exact_div(e, a) == b + 64
    assert exact_div(a + 1, 2) is None and exact_div(a * b, b * 2) is None


@pytest.mark.parametrize("decide", [lambda: bool(a), lambda: int(a), lambda: float(a), lambda: a < b,
                                    lambda: (a + 1) // 2, lambda: a % 3, lambda: range(a), lambda: max(a, b)])
def test_undecidable_questions_raise(decide):
    with pytest.raises(NotConcrete):
        decide()


def test_provable_comparisons():
    assert a < a + 1 and a >= 0 and not (a + 1 <= a) and 0 <= a * b
    assert min(a, a + 1) == a and max(a * 2, a) == a * 2
    assert sign(a - 1) is None and sign(a + 1) == 1 and nonneg(a * b) and is_size(a * 4)
    with hints_scope({}, {"ks0": 2}):  # TorchDynamo guards symbolic sizes >= 2
        assert sign(a - 1) == 1 and a > 1
    with hints_scope({}, {"ks0": None}):  # an int input that may be negative is no size
        assert not nonneg(a) and not is_size(a)
        with pytest.raises(NotConcrete):
            a >= 0


def test_size_hint_only_inside_a_scope():
    with hints_scope({"ks0": 7, "ks1": 3}):
        assert size_hint(a * b + 1) == 22
    with pytest.raises(NotConcrete):
        size_hint(a)


def test_reshape_index_folds_with_symbolic_sizes():
    """[ks0*ks1, n] read from [ks0, ks1, n]: (i0 // ks1, i0 % ks1) folds back to i0."""
    i0 = Sym("i0", a * b)
    e = add(scale(floordiv(i0, b), b * 64), scale(mod(i0, b), 64))
    assert e == scale(i0, 64)
    # (ks1*i + j) // (ks0*ks1) with j < ks1 is i // ks0; the modulo keeps j
    i, j = Sym("i", a * 4), Sym("j", b)
    assert floordiv(add(scale(i, b), j), a * b) == floordiv(i, a)
    assert mod(add(scale(i, b), j), b) == j
    assert bounds(floordiv(i0, b)) == (0, a - 1)


def test_index_of_unknown_sign_is_not_divided():
    i = Sym("i", a)
    with pytest.raises(NotConcrete):
        floordiv(add(i, -b), 4)  # may be negative: C++ division would truncate, not floor


def test_derived_sizes_inside_a_compile_scope():
    """Floor division, remainder, max and min of sizes are derived sizes (kd0) of the compile's scope:
    one per definition, with a lower bound and an example value, and an upper bound proofs use."""
    from kiln.prims.symbolic import derived_sizes
    with hints_scope({"ks0": 41}, {"ks0": 3}):
        half = (a - 3) // 2
        assert half == (a - 3) // 2 and repr(half) == "kd0"  # the same definition, the same size
        assert size_hint(half + 1) == 20 and half >= 0 and is_size(half + 1)
        assert half <= a and (a - half) >= 0 and min(half, a) == half  # n//2 <= n
        assert a % 4 != half and size_hint(a % 4) == 1 and (a % 4) < 4
        (d0, d1, *_) = derived_sizes()
        assert d0.python() == "(ks0 - 3) // (2)" and d0.value({"ks0": 10}) == 3
        assert d1.op == "mod" and d1.value({"ks0": 10}) == 2
        with pytest.raises(NotConcrete):
            a // (b - 2)  # a divisor that may be 0 or negative
    assert not derived_sizes()


def test_exact_division_by_a_polynomial():
    assert exact_div(8 * a + 8, a + 1) == 8 and exact_div(a * b + b, a + 1) == b
    assert exact_div(a + 1, a + 1) == 1 and exact_div(a + 2, a + 1) is None and exact_div(0, a + 1) == 0


def test_undecided_comparisons_are_guarded_decisions():
    """With a guard sink (a front end's ShapeEnv), a comparison no proof settles is decided at the
    example sizes and guarded; proofs (provably_lt, sign, nonneg) never add a guard."""
    from kiln.prims.symbolic import differs, provably_lt
    asked = []

    def decide(diff, relation):
        asked.append((repr(diff), relation))
        return evaluate(diff, {"ks0": 5, "ks1": 3}) > 0 if relation == ">" else (
            evaluate(diff, {"ks0": 5, "ks1": 3}) == 0 if relation == "==" else evaluate(diff, {"ks0": 5, "ks1": 3}) >= 0)

    with hints_scope({"ks0": 5, "ks1": 3}, {"ks0": 2, "ks1": 2}, decide):
        assert not provably_lt(a, b) and not asked
        assert b < a and asked == [(repr(a - b), ">")]
        assert min(a, b) == b and bool(a - b) and differs(a, b)
        assert not differs(a, a) and differs(a, 1)  # provable: no question asked
        with pytest.raises(NotConcrete):
            differs(a, b + 2)  # equal at the example sizes: no structural equality to carry on with
    with pytest.raises(NotConcrete):
        b < a  # no guard sink: per concrete size
