"""Loop op -> Triton expression, one table entry per op; Triton spellings of dtypes."""
from __future__ import annotations

from kiln.prims.symbolic import NotConcrete, is_symbolic
from dataclasses import dataclass

import torch

from kiln.inductor.ir.loop import LoopOp, ReductionType

TL_DTYPES = {
    torch.float32: "tl.float32", torch.float64: "tl.float64", torch.int64: "tl.int64", torch.int32: "tl.int32",
    torch.int16: "tl.int16", torch.int8: "tl.int8", torch.uint8: "tl.uint8", torch.bool: "tl.int1",
    torch.float16: "tl.float16", torch.bfloat16: "tl.bfloat16",
}

# {0}, {1}, {2}: operands; {T}: the result's Triton dtype. `km` is codegen.triton.device_math.
EXPR = {
    LoopOp.NEG: "-({0})", LoopOp.ABS: "tl.abs({0})", LoopOp.EXP: "tl.exp({0})", LoopOp.LOG: "tl.log({0})",
    LoopOp.LOG1P: "km.log1p({0})", LoopOp.EXPM1: "km.expm1({0})", LoopOp.SIN: "tl.sin({0})",
    LoopOp.COS: "tl.cos({0})", LoopOp.TAN: "km.tan({0})", LoopOp.TANH: "km.tanh({0})",
    LoopOp.SQRT: "tl.sqrt({0})", LoopOp.RSQRT: "1.0 / tl.sqrt({0})", LoopOp.RECIPROCAL: "1.0 / {0}",
    LoopOp.ERF: "tl.erf({0})", LoopOp.FLOOR: "tl.floor({0})", LoopOp.CEIL: "tl.ceil({0})",
    LoopOp.TRUNC: "km.trunc({0})", LoopOp.ROUND: "km.rint({0})", LoopOp.SIGN: "km.sign({0})",
    LoopOp.NOT: "{0} == 0", LoopOp.ISNAN: "{0} != {0}",
    LoopOp.ADD: "{0} + {1}", LoopOp.SUB: "{0} - {1}", LoopOp.MUL: "{0} * {1}", LoopOp.TRUEDIV: "{0} / {1}",
    LoopOp.POW: "km.pow({0}, {1})", LoopOp.MAXIMUM: "km.maximum({0}, {1})", LoopOp.MINIMUM: "km.minimum({0}, {1})",
    LoopOp.EQ: "{0} == {1}", LoopOp.NE: "{0} != {1}", LoopOp.LT: "{0} < {1}", LoopOp.LE: "{0} <= {1}",
    LoopOp.GT: "{0} > {1}", LoopOp.GE: "{0} >= {1}", LoopOp.AND: "{0} & {1}", LoopOp.OR: "{0} | {1}",
    LoopOp.XOR: "{0} ^ {1}", LoopOp.BITNOT: "~{0}", LoopOp.SHL: "km.shl({0}, {1})", LoopOp.SHR: "km.shr({0}, {1})",
    LoopOp.ERFC: "km.erfc({0})", LoopOp.SIGNBIT: "km.signbit({0})", LoopOp.ATAN2: "km.atan2({0}, {1})",
    LoopOp.FMOD: "{0} % {1}",
    # the scope's mask and zero block: a lane outside the iteration space never flags an error
    LoopOp.CHECK_INDEX: "km.check_index({0}, {1}, p_kiln_index_error + {zero}, {mask})",
    LoopOp.CHECK_DIVISOR: "km.check_divisor({0}, p_kiln_index_error + {zero}, {mask})",
    LoopOp.WHERE: "tl.where({0}, {1}, {2})", LoopOp.TO_DTYPE: "({0}).to({T})",
}
# Where a dtype changes the spelling: bool + bool is `or` in torch (int1 + int1 wraps in Triton),
# integer pow needs its own device function, bfloat16 rounds to nearest even explicitly, and
# signed integer division wraps INT_MIN / -1 as eager (LLVM's sdiv leaves it undefined). Integer
# divisors are nonzero here (CHECK_DIVISOR).
_SIGNED = (torch.int64, torch.int32, torch.int16, torch.int8)
BY_DTYPE = {
    (LoopOp.ADD, torch.bool): "{0} | {1}",
    **{(LoopOp.POW, dt): "km.ipow({0}, {1})" for dt in _SIGNED + (torch.uint8,)},
    (LoopOp.TO_DTYPE, torch.bfloat16): "km.to_bfloat16({0})",
    **{(LoopOp.TRUEDIV, dt): "km.idiv({0}, {1})" for dt in _SIGNED},
    **{(LoopOp.FMOD, dt): "km.imod({0}, {1})" for dt in _SIGNED},
    (LoopOp.TRUEDIV, torch.uint8): "{0} // {1}",
    (LoopOp.FMOD, torch.uint8): "{0} % {1}",
}
# 16-bit float math runs in float32 (render._math): WIDEN converts an operand (exactly), HALF_FLOATS
# rounds the result back.
WIDEN = {torch.float16: "({}).to(tl.float32)", torch.bfloat16: "km.from_bfloat16({})"}
HALF_FLOATS = {torch.float16: "({}).to(tl.float16)", torch.bfloat16: "km.to_bfloat16({})"}



@dataclass(frozen=True)
class TritonReduction:
    """How one reduction renders. Its state is a tuple of accumulators (one for sum; value and
    index for argmax; mean, m2 and weight would make Welford). A looped kernel combines them lane
    by lane with `combine` at every step; both kernel forms end with `final`, which reduces the
    lanes of a row to the result. Only Triton builtins and Kiln's device functions appear: tl.sum
    & co are jit functions whose interpreter-or-GPU form triton fixed when it was imported."""
    init: tuple[str, ...]  # identity per accumulator; {lowest}/{highest}: extremes of the element dtype
    lift: tuple[str, ...]  # one element as accumulators; {v}: its value, {r}: its flat index in the row,
    # {T}: the accumulator's dtype (a template using it is already of that dtype)
    combine: str  # elementwise device function (accs..., accs...) -> accs...
    final: str  # the row's result from its lanes {0}, {1}, ... ([XBLOCK, RBLOCK] -> [XBLOCK])
    dtypes: tuple = (None,)  # accumulator dtypes; None: acc_dtype(element dtype)


_NO_INDEX = str(2**63 - 1)  # masked-off lanes' index: loses every tie to a real element
REDUCTION = {
    ReductionType.SUM: TritonReduction(("0",), ("{v}",), "km.sum_combine", "km.row_sum({0})"),
    ReductionType.PROD: TritonReduction(("1",), ("{v}",), "km.prod_combine", "km.row_prod({0})"),
    ReductionType.MAX: TritonReduction(("{lowest}",), ("{v}",), "km.maximum", "km.row_max({0})"),
    ReductionType.MIN: TritonReduction(("{highest}",), ("{v}",), "km.minimum", "km.row_min({0})"),
    ReductionType.ARGMAX: TritonReduction(("{lowest}", _NO_INDEX), ("{v}", "{r}"), "km.argmax_combine",
                                          "km.row_argmax({0}, {1})", (None, "tl.int64")),
    ReductionType.ARGMIN: TritonReduction(("{highest}", _NO_INDEX), ("{v}", "{r}"), "km.argmin_combine",
                                          "km.row_argmin({0}, {1})", (None, "tl.int64")),
}
# Reduction types that other branches add to the loop IR: ANY (or over bools) and WELFORD (var's
# sum of squared deviations in one pass: per-lane mean, m2, count; lanes merged by Chan's formula).
_LATER = {
    "ANY": TritonReduction(("0",), ("{v}",), "km.or_combine", "km.row_max({0})"),
    "WELFORD": TritonReduction(("0", "0", "0"), ("{v}", "tl.full([1], 0, {T})", "tl.full([1], 1, {T})"),
                               "km.welford_combine", "km.row_welford_m2({0}, {1}, {2})", (None, None, None)),
}
REDUCTION.update({ReductionType[k]: v for k, v in _LATER.items() if k in ReductionType.__members__})
# 16-bit floats accumulate in float32: as eager for sums; exact for max/min (and the interpreter
# has no bfloat16 arithmetic: it would compare raw bits).
WIDER_ACCUMULATOR = {(kind, dt): torch.float32 for kind in ReductionType for dt in (torch.float16, torch.bfloat16)}


def acc_dtype(kind, element_dtype):
    return WIDER_ACCUMULATOR.get((kind, element_dtype), element_dtype)


def tl_dtype(dtype) -> str:
    return TL_DTYPES[dtype]


def extreme(dtype, low: bool) -> str:
    if dtype.is_floating_point:
        return "float('-inf')" if low else "float('inf')"
    if dtype == torch.bool:
        return "0" if low else "1"
    info = torch.iinfo(dtype)
    return str(info.min if low else info.max)


def literal(value, dtype) -> str:
    if is_symbolic(value):  # a size as a value: computed from the size arguments
        if dtype in (torch.float16, torch.bfloat16, torch.bool):
            raise NotConcrete(f"size {value!r} as a {dtype} value")
        return f"({value!r})"
    if dtype == torch.bool:
        return "1" if value else "0"
    if dtype.is_floating_point:
        v = float(value)
        if dtype in (torch.float16, torch.bfloat16):  # round here, as torch: the interpreter truncates
            v = float(torch.tensor(v, dtype=dtype))
        return f"float('{v}')" if v != v or v in (float("inf"), float("-inf")) else repr(v)
    return str(int(value))
