"""Loop op -> Triton expression, one table entry per op; Triton spellings of dtypes."""
from __future__ import annotations

import torch

from inductor.ir.loop import LoopOp, ReductionType

TL_DTYPES = {
    torch.float32: "tl.float32", torch.float64: "tl.float64", torch.int64: "tl.int64", torch.int32: "tl.int32",
    torch.int16: "tl.int16", torch.int8: "tl.int8", torch.uint8: "tl.uint8", torch.bool: "tl.int1",
}

# {0}, {1}, {2}: operands; {T}: the result's Triton dtype. `km` is codegen.triton.device_math.
EXPR = {
    LoopOp.NEG: "-{0}", LoopOp.ABS: "tl.abs({0})", LoopOp.EXP: "tl.exp({0})", LoopOp.LOG: "tl.log({0})",
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
    LoopOp.WHERE: "tl.where({0}, {1}, {2})", LoopOp.TO_DTYPE: "({0}).to({T})",
}
# Where a dtype changes the spelling: bool + bool is `or` in torch (int1 + int1 wraps in Triton),
# and integer pow needs its own device function.
BY_DTYPE = {
    (LoopOp.ADD, torch.bool): "{0} | {1}",
    **{(LoopOp.POW, dt): "km.ipow({0}, {1})" for dt in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)},
}

# reduction -> (initial accumulator value, elementwise combine of acc and v, final reduce over axis 1).
# Only builtins (tl.reduce) and Kiln's device functions: tl.sum & co are jit functions whose
# interpreter-or-GPU form triton fixed when it was imported.
REDUCTION = {
    ReductionType.SUM: ("0", "{acc} + {v}", "tl.reduce({acc}, 1, km.sum_combine)"),
    ReductionType.PROD: ("1", "{acc} * {v}", "tl.reduce({acc}, 1, km.prod_combine)"),
    ReductionType.MAX: ("{lowest}", "km.maximum({acc}, {v})", "tl.reduce({acc}, 1, km.maximum)"),
    ReductionType.MIN: ("{highest}", "km.minimum({acc}, {v})", "tl.reduce({acc}, 1, km.minimum)"),
    ReductionType.ARGMAX: ("{lowest}", "km.argmax_combine", "tl.reduce(({acc}, {acc}_i), 1, km.argmax_combine)[1]"),
    ReductionType.ARGMIN: ("{highest}", "km.argmin_combine", "tl.reduce(({acc}, {acc}_i), 1, km.argmin_combine)[1]"),
    ReductionType.ANY: ("0", "{acc} | {v}", "tl.reduce({acc}, 1, km.or_combine)"),
    # (mean, m2, count) per lane, updated in render.py; lanes combined by Chan et al.'s formula
    ReductionType.WELFORD: ("0", "", "tl.reduce(({acc}, {acc}_m2, {acc}_n), 1, km.welford_combine)[1]"),
}


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
    if dtype == torch.bool:
        return "1" if value else "0"
    if dtype.is_floating_point:
        v = float(value)
        return f"float('{v}')" if v != v or v in (float("inf"), float("-inf")) else repr(v)
    return str(int(value))
