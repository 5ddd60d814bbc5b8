"""Special-value sweeps through both code generators (C++ build; Triton under its interpreter).

Every elementwise prim (through its ATen op) and the elementwise ATen ops composed of several
prims, on inputs holding inf, -inf, NaN, -0.0, the dtype's min and max, the smallest normal and
denormals: unary ops on all of them, binary ops on every pair, and every binary op with each
special Python constant as either operand (constants must keep their exact bits: 0.0 and -0.0
are different). special_values.py says how results are compared with eager.

Each (target, dtype) compiles all ops of a sweep as one graph (one C++ build). CI runs a fixed
sample of the (target, dtype) pairs and of the constants; KILN_FULL=1 runs them all.
"""
import math
import os
import warnings

import pytest
import torch
import torch.fx as fx

from kiln.backend import compile_graph
from kiln.prims.errors import UnsupportedGraph
from special_values import (BINARY, CONSTANT_EXACT, CONSTANT_OPS, DIVISIONS, EXACT, FLOAT_CONSTANTS, FLOATS, INF,
                            INT_CONSTANTS, INTS, NAN, SAMPLE_FLOAT_CONSTANTS, SAMPLE_INT_CONSTANTS, TRAPS_IN_EAGER,
                            UNARY, describe_mismatches, eager_outputs, pairs, special_tensor)

FULL = bool(os.environ.get("KILN_FULL"))
DTYPES = {"cpp": [*FLOATS, *INTS, torch.bool], "triton": [*FLOATS, *INTS, torch.bool]}
# int32: INT_MIN / -1 (x86's idiv traps), zero divisors; float16, bfloat16: the 16-bit paths of both renderers
SAMPLE = {("cpp", torch.float32), ("cpp", torch.int32), ("cpp", torch.float16), ("cpp", torch.bfloat16),
          ("triton", torch.float32), ("triton", torch.bfloat16)}


def _cases():
    return [pytest.param(target, dtype, id=f"{target}-{str(dtype).replace('torch.', '')}",
                         marks=() if (target, dtype) in SAMPLE else pytest.mark.slow)
            for target, dtypes in DTYPES.items() for dtype in dtypes]


def _eager_ok(fn, inputs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eager_outputs(fn, inputs)
        return True
    except (RuntimeError, TypeError, ValueError, NotImplementedError, OverflowError):  # eager refuses
        return False


def _compile(fn, inputs, target):
    return compile_graph(fx.symbolic_trace(fn), [x.clone() for x in inputs], target=target)


def _batch(fns, arity):
    names = list(fns)
    if arity == 1:
        return lambda x: tuple(fns[n](x) for n in names)  # fx traces no *args
    return lambda a, b: tuple(fns[n](a, b) for n in names)


def _sweep(fns: dict, inputs, target, exact: set) -> list[str]:
    """Compile every fn (name -> fn(*inputs)) into one graph and compare each output with eager.
    Ops Kiln leaves to eager (it cannot compile them: users get a warning and an eager run) are left out."""
    fns = {n: f for n, f in fns.items() if _eager_ok(f, inputs)}
    try:
        compiled = _compile(_batch(fns, len(inputs)), inputs, target)
    except Exception:  # noqa: BLE001  (some op is left to eager: find which)
        fns = {n: f for n, f in fns.items() if _supported(f, inputs, target)}
        compiled = _compile(_batch(fns, len(inputs)), inputs, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's (the interpreter's) division-by-zero warnings
        got = compiled.call(*inputs)
    failures = []
    for (name, fn), g in zip(fns.items(), got):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (expected,), (alternative,) = eager_outputs(fn, inputs)
        message = describe_mismatches(name, g, expected, inputs, name in exact, alternative)
        if message:
            failures.append(message)
    return failures


def _supported(fn, inputs, target):
    """Whether Kiln compiles fn: where it cannot, users get one warning and an eager run (never a wrong answer)."""
    try:
        _compile(fn, inputs, target)
        return True
    except UnsupportedGraph:  # a deliberate refusal; anything else (a g++ error) is a bug the sweep must show
        return False


def _exact_for(dtype, names):
    """Integer and bool results are always compared exactly; float results of integer inputs come
    from eager's int-to-float kernels (sqrt(uint8 254) is 1 ulp off there), within tolerance."""
    return names if dtype.is_floating_point else set()


def _unary(fn):
    return lambda x: fn(x)


def _binary(fn):
    return lambda a, b: fn(a, b)


@pytest.mark.parametrize("target, dtype", _cases())
def test_unary_ops_on_special_values(target, dtype):
    x = special_tensor(dtype)
    fns = {name: _unary(fn) for name, fn in UNARY.items()}
    failures = _sweep(fns, [x], target, _exact_for(dtype, EXACT))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("target, dtype", _cases())
def test_binary_ops_on_every_pair_of_special_values(target, dtype):
    a, b = pairs(dtype)
    integer = not dtype.is_floating_point
    fns = {name: _binary(fn) for name, fn in BINARY.items() if not (integer and name in DIVISIONS)}
    failures = _sweep(fns, [a, b], target, _exact_for(dtype, EXACT))
    if integer and dtype != torch.bool:  # divisions: every pair but zero divisors (and INT_MIN / -1 where eager traps)
        nonzero = b != 0
        failures += _sweep({n: _binary(BINARY[n]) for n in DIVISIONS - TRAPS_IN_EAGER},
                           [a[nonzero], b[nonzero]], target, set())
        keep = nonzero & ~((a == torch.iinfo(dtype).min) & (b == -1))
        failures += _sweep({n: _binary(BINARY[n]) for n in TRAPS_IN_EAGER}, [a[keep], b[keep]], target, set())
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("target, dtype", [p for p in _cases() if p.values[1] in INTS])
def test_integer_division_by_zero_raises_as_eager(target, dtype):
    """Every integer division op over every pair (zero divisors included): eager's error."""
    a, b = pairs(dtype)
    for name in sorted(DIVISIONS - TRAPS_IN_EAGER):
        fn = _binary(BINARY[name])
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(a, b)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            _compile(fn, [a, b], target).call(a, b)


def _with_constant(fn, c, reflected):
    return (lambda x: fn(c, x)) if reflected else (lambda x: fn(x, c))


@pytest.mark.parametrize("target, dtype", _cases())
def test_every_binary_op_with_each_special_constant(target, dtype):
    """op(x, c) and op(c, x) for every special Python constant c, all in one graph: constants that
    compare equal (0.0 and -0.0) must stay apart through capture, prims, loop IR and rendering."""
    x = special_tensor(dtype)
    if dtype.is_floating_point:
        constants = FLOAT_CONSTANTS if FULL else SAMPLE_FLOAT_CONSTANTS
    else:
        constants = INT_CONSTANTS if FULL else SAMPLE_INT_CONSTANTS
    fns, exact = {}, set()
    for name, (right, left) in CONSTANT_OPS.items():
        for k, c in enumerate(constants):
            for side, fn in (("right", right), ("left", left)):
                if fn is None:
                    continue
                if not dtype.is_floating_point and name in ("floordiv", "mod") and c == 0 and isinstance(c, int):
                    continue  # integer division by zero raises: test_integer_division.py
                key = f"{name}[{side}, {c!r}#{k}]"
                fns[key] = _with_constant(fn, c, side == "left")
                if name in CONSTANT_EXACT and dtype.is_floating_point:
                    exact.add(key)
    failures = _sweep(fns, [x], target, exact)
    assert not failures, "\n".join(failures)


def _of_constant(fn, c):
    return lambda x: fn(torch.full_like(x, c))


@pytest.mark.parametrize("target, dtype", [p if p.values[0] == "cpp" else pytest.param(*p.values, id=p.id, marks=pytest.mark.slow)
                                           for p in _cases()])
def test_every_unary_op_of_each_special_constant(target, dtype):
    """op(full_like(x, c)): the constant is the operand itself, spelt inline (C++) or named
    (Triton); its spelling must survive every op's template (`-` before `-inf` was `--inf`).
    CI runs the C++ sample with the signed constants (the ones a template can misspell)."""
    x = special_tensor(dtype)[:4]
    constants = FLOAT_CONSTANTS if dtype.is_floating_point else INT_CONSTANTS[:12]
    if not FULL:
        constants = [c for c in constants if math.copysign(1.0, c) < 0]
    fns = {f"{name}[{c!r}#{k}]": _of_constant(fn, c) for name, fn in UNARY.items() for k, c in enumerate(constants)}
    failures = _sweep(fns, [x], target, _exact_for(dtype, {n for n in fns if n.split("[")[0] in EXACT}))
    assert not failures, "\n".join(failures)


def _check_special_values(fn, x, target):
    """eager's infinities, NaNs and signed zeros exactly (those of its vectorised or of its scalar
    loop: gelu(-0.0) is 0.0 in one, -0.0 in the other), other values within a few ulp."""
    got = _compile(fn, [x], target).call(x)
    (vectorised,), (scalar,) = eager_outputs(fn, [x])
    assert describe_mismatches("", got, vectorised, [x], False, alternative=scalar) is None, (x, got, vectorised)


@pytest.mark.parametrize("target", ["cpp", "triton"])
def test_log1p_and_atanh_of_the_infinities_and_one(target):
    """log1p(inf) is inf (Triton's log1p gave NaN: its rounding correction divided inf by inf), so
    atanh(1) = log1p(2 / 0) / 2 is inf too; log1p(-1) is -inf, log1p(-0.0) is -0.0."""
    x = torch.tensor([INF, -INF, -1.0, -0.0, 0.0, NAN, 1e-45])
    _check_special_values(lambda x: torch.log1p(x), x, target)
    _check_special_values(lambda x: torch.atanh(x), torch.tensor([1.0, -1.0, -0.0, 0.0, 2.0, NAN]), target)


@pytest.mark.parametrize("target", ["cpp", "triton"])
def test_gelu_of_the_infinities_follows_eager(target):
    """Decided: gelu(-inf) is NaN, as eager's kernels give (x * Phi(x) at -inf is -inf * 0), and
    gelu(inf) is inf, as eager's scalar loop gives (its vectorised exact gelu gives NaN on some
    machines: this VM's AVX-512 EPYC, not the AVX2 one before it); the same for the tanh approximation."""
    x = torch.tensor([INF, -INF, NAN, -0.0, 0.0, 3.0, -3.0] * 3)  # some in full vectors, some in eager's tail
    for approximate in ("none", "tanh"):
        scalar = torch.stack([torch.nn.functional.gelu(v.reshape(1), approximate=approximate)[0] for v in x[:2]])
        assert scalar[1].isnan() and scalar[0] == INF
        _check_special_values(lambda x: torch.nn.functional.gelu(x, approximate=approximate), x, target)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_sin_and_tan_keep_minus_zero_on_the_fast_path(dtype):
    """sin(-0.0) and tan(-0.0) are -0.0 in Kiln's own C++ trig too: the sweeps above hold huge inputs,
    whose libm rerun (KILN_EXACT) hid that the fast path gave +0.0."""
    x = torch.tensor([-0.0, 0.0, 1.0, -1.0] * 17, dtype=dtype)
    for fn in (torch.sin, torch.tan):
        _check_special_values(lambda x: fn(x), x, "cpp")
