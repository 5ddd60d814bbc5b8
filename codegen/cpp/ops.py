"""Loop op -> C++ expression, one table entry per op; reductions; C++ spellings of dtypes and constants."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kiln.inductor.ir.loop import LoopOp, ReductionType
from kiln.prims.symbolic import NotConcrete, is_symbolic

# The C type a value of each dtype has inside a kernel: 16-bit floats compute in float.
CTYPES = {
    torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
    torch.int16: "int16_t", torch.int8: "int8_t", torch.uint8: "uint8_t", torch.bool: "bool",
    torch.float16: "float", torch.bfloat16: "float",
}


@dataclass(frozen=True)
class HalfFloat:
    """How a 16-bit float dtype is stored (its bits, uint16_t) and rounded (prelude.py)."""
    load: str  # bits -> float, exact
    store: str  # float -> bits, to nearest even
    round: str  # float -> float holding the nearest 16-bit value


HALF_FLOATS = {
    torch.float16: HalfFloat("kiln_h2f({})", "kiln_f2h({})", "kiln_round_h({})"),
    torch.bfloat16: HalfFloat("kiln_bf2f({})", "kiln_f2bf({})", "kiln_round_bf({})"),
}
# Ops whose result on 16-bit operands is one of them or an integer they bound: no rounding needed.
EXACT_ON_HALF = {LoopOp.NEG, LoopOp.ABS, LoopOp.MAXIMUM, LoopOp.MINIMUM, LoopOp.WHERE, LoopOp.SIGN, LoopOp.FLOOR,
                 LoopOp.CEIL, LoopOp.TRUNC, LoopOp.ROUND}

# {0}, {1}, {2}: operands; {T}: the result's C type
EXPR = {
    LoopOp.NEG: "-({0})", LoopOp.ABS: "std::abs({0})", LoopOp.EXP: "kiln_exp({0})", LoopOp.LOG: "kiln_log({0})",
    LoopOp.LOG1P: "kiln_log1p({0})", LoopOp.EXPM1: "kiln_expm1({0})", LoopOp.SIN: "kiln_sin<KILN_EXACT>({0})",
    LoopOp.COS: "kiln_cos<KILN_EXACT>({0})", LoopOp.TAN: "kiln_tan<KILN_EXACT>({0})", LoopOp.TANH: "kiln_tanh({0})",
    LoopOp.SQRT: "std::sqrt({0})", LoopOp.RSQRT: "{T}(1) / std::sqrt({0})", LoopOp.RECIPROCAL: "{T}(1) / {0}",
    LoopOp.ERF: "kiln_erf({0})", LoopOp.FLOOR: "std::floor({0})", LoopOp.CEIL: "std::ceil({0})",
    LoopOp.TRUNC: "std::trunc({0})", LoopOp.ROUND: "std::nearbyint({0})", LoopOp.SIGN: "kiln_sign({0})",
    LoopOp.NOT: "!{0}", LoopOp.ISNAN: "std::isnan({0})",
    LoopOp.ADD: "{0} + {1}", LoopOp.SUB: "{0} - {1}", LoopOp.MUL: "{0} * {1}", LoopOp.TRUEDIV: "{0} / {1}",
    LoopOp.POW: "kiln_pow({0}, {1})", LoopOp.MAXIMUM: "kiln_max({0}, {1})", LoopOp.MINIMUM: "kiln_min({0}, {1})",
    LoopOp.EQ: "{0} == {1}", LoopOp.NE: "{0} != {1}", LoopOp.LT: "{0} < {1}", LoopOp.LE: "{0} <= {1}",
    LoopOp.GT: "{0} > {1}", LoopOp.GE: "{0} >= {1}", LoopOp.AND: "{0} & {1}", LoopOp.OR: "{0} | {1}",
    LoopOp.XOR: "{0} ^ {1}", LoopOp.BITNOT: "~{0}", LoopOp.SHL: "kiln_shl({0}, {1})", LoopOp.SHR: "kiln_shr({0}, {1})",
    LoopOp.ERFC: "std::erfc({0})", LoopOp.SIGNBIT: "kiln_signbit({0})", LoopOp.ATAN2: "std::atan2({0}, {1})",
    LoopOp.FMOD: "kiln_fmod({0}, {1})", LoopOp.CHECK_INDEX: "kiln_check_index({0}, {1}, kiln_bad)",
    LoopOp.CHECK_DIVISOR: "kiln_check_divisor({0}, kiln_bad)",
    LoopOp.WHERE: "{0} ? {1} : {2}", LoopOp.TO_DTYPE: "static_cast<{T}>({0})",
}

# Where a dtype changes the spelling: integer division wraps INT_MIN / -1 as eager (x86's idiv traps).
BY_DTYPE = {(LoopOp.TRUEDIV, dt): "kiln_idiv({0}, {1})"
            for dt in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)}

# Ops whose fast float path holds on part of the domain only: each use also ORs `check` into the
# kernel's `kiln_big` flag, and a kernel that saw such an input reruns with KILN_EXACT (libm).
DOMAIN = {LoopOp.SIN: "kiln_trig_bad({0})", LoopOp.COS: "kiln_trig_bad({0})", LoopOp.TAN: "kiln_trig_bad({0})"}


@dataclass(frozen=True)
class CppReduction:
    """How a reduction accumulates in C++. Each accumulator is an array of slots (vector lanes, a
    tail slot, or one slot per thread), folded into slot 0 at the end.

    accs: (C type, initial value) per accumulator; {T} is the reduced value's type.
    update: one element into one slot; {a}, {b}, {c}: the slot of each accumulator, {v}: the value,
        {r}: the element's flat index in the reduction, {w}: 1 / (elements in this slot so far).
    fold: folds {n} slots of the accumulator arrays {A}, {B}, {C} into slot 0.
    result: the reduction's value, from slot {i} of the (folded) arrays.
    counted: the renderer keeps element counts in accumulator c (Welford).
    cascade: long loops add the slots into a second level every few rounds (sums: error grows with
        the block length instead of the row length, as eager's cascade sum).
    """
    accs: tuple[tuple[str, str], ...]
    update: str
    fold: str
    result: str
    counted: bool = False
    cascade: bool = False


REDUCTION = {
    ReductionType.SUM: CppReduction((("{T}", "{T}(0)"),), "{a} = {a} + {v};", "kiln_fold_sum({n}, {A})", "{A}[{i}]",
                                    cascade=True),
    ReductionType.PROD: CppReduction((("{T}", "{T}(1)"),), "{a} = {a} * {v};", "kiln_fold_prod({n}, {A})", "{A}[{i}]"),
    # NaN wins without a flag: once a slot holds NaN, `v > NaN` is false and the NaN stays.
    ReductionType.MAX: CppReduction((("{T}", "kiln_lowest<{T}>()"),), "{a} = ({v} > {a} || {v} != {v}) ? {v} : {a};",
                                    "kiln_fold_max({n}, {A})", "{A}[{i}]"),
    ReductionType.MIN: CppReduction((("{T}", "kiln_highest<{T}>()"),), "{a} = ({v} < {a} || {v} != {v}) ? {v} : {a};",
                                    "kiln_fold_min({n}, {A})", "{A}[{i}]"),
    ReductionType.ANY: CppReduction((("bool", "false"),), "{a} = {a} || {v};", "kiln_fold_any({n}, {A})", "{A}[{i}]"),
    # Within a slot elements arrive in index order, so a strict comparison keeps the first of equals.
    ReductionType.ARGMAX: CppReduction(
        (("{T}", "{T}(0)"), ("int64_t", "-1")),
        "{{ const bool kb = {b} < 0 || kiln_gt({v}, {a}); {a} = kb ? {v} : {a}; {b} = kb ? {r} : {b}; }}",
        "kiln_fold_arg<true>({n}, {A}, {B})", "{B}[{i}]"),
    ReductionType.ARGMIN: CppReduction(
        (("{T}", "{T}(0)"), ("int64_t", "-1")),
        "{{ const bool kb = {b} < 0 || kiln_lt({v}, {a}); {a} = kb ? {v} : {a}; {b} = kb ? {r} : {b}; }}",
        "kiln_fold_arg<false>({n}, {A}, {B})", "{B}[{i}]"),
    # (mean, m2, count): one pass, m2 is the sum of squared deviations from the mean.
    ReductionType.WELFORD: CppReduction(
        (("{T}", "{T}(0)"), ("{T}", "{T}(0)"), ("int64_t", "0")),
        "{{ const {T} kd = {v} - {a}; {a} = {a} + kd * {w}; {b} = {b} + kd * ({v} - {a}); }}",
        "kiln_fold_welford({n}, {A}, {B}, {C})", "{B}[{i}]", counted=True),
}


def ctype(dtype) -> str:
    """The C type of a value of `dtype` in a kernel."""
    return CTYPES[dtype]


def storage_ctype(dtype) -> str:
    """The C type of an element of a buffer of `dtype`."""
    return "uint16_t" if dtype in HALF_FLOATS else CTYPES[dtype]


def load_value(dtype, element: str) -> str:
    """A buffer element as a value."""
    return HALF_FLOATS[dtype].load.format(element) if dtype in HALF_FLOATS else element


def store_value(dtype, value: str) -> str:
    """A value as a buffer element."""
    return HALF_FLOATS[dtype].store.format(value) if dtype in HALF_FLOATS else value


def rounded(dtype, value: str) -> str:
    """A float value rounded to `dtype` where that is a 16-bit float (as eager rounds each op's result)."""
    return HALF_FLOATS[dtype].round.format(value) if dtype in HALF_FLOATS else value


def value_itemsize(dtype) -> int:
    return 4 if dtype in HALF_FLOATS else dtype.itemsize


def literal(value, dtype) -> str:
    t = ctype(dtype)
    if is_symbolic(value):  # a size as a value (x * x.shape[1]): computed from the size arguments
        if dtype in HALF_FLOATS or dtype == torch.bool:
            raise NotConcrete(f"size {value!r} as a {dtype} value")
        return f"static_cast<{t}>({value!r})"
    if dtype == torch.bool:
        return "true" if value else "false"
    if dtype.is_floating_point:
        v = float(value)
        if dtype in HALF_FLOATS:  # the 16-bit value, exactly (a float holds it)
            v = float(torch.tensor(v, dtype=dtype))
        if math.isnan(v):
            return f"std::numeric_limits<{t}>::quiet_NaN()"
        if math.isinf(v):
            return f"(-std::numeric_limits<{t}>::infinity())" if v < 0 else f"std::numeric_limits<{t}>::infinity()"
        return f"static_cast<{t}>({v!r})"
    v = int(value)
    return f"static_cast<{t}>({v + 1}LL - 1)" if v == -2**63 else f"static_cast<{t}>({v}LL)"  # -2^63 has no literal
