"""The loop-level IR: the scalar work done at one point of a loop nest.

A body is a DAG of `LoopNode`s (load, constant, index_expr, to_dtype, where, scalar math,
...). Nodes are immutable values compared structurally, so equal subexpressions are shared.
Constants compare by their exact value: 0.0 and -0.0 (equal under `==`) are different nodes.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import torch


class LoopOp(enum.Enum):
    # leaves
    LOAD = "load"  # attr: (buffer name, index)
    CONSTANT = "constant"  # attr: Python value
    INDEX_EXPR = "index_expr"  # attr: index expression, as a value
    LOCAL = "local"  # attr: name of a value already computed in this kernel (a reduction result)
    # conversions and selection
    TO_DTYPE = "to_dtype"
    WHERE = "where"
    # unary math
    NEG = "neg"; ABS = "abs"; EXP = "exp"; LOG = "log"; LOG1P = "log1p"; EXPM1 = "expm1"  # noqa: E702
    SIN = "sin"; COS = "cos"; TAN = "tan"; TANH = "tanh"; SQRT = "sqrt"; RSQRT = "rsqrt"  # noqa: E702
    RECIPROCAL = "reciprocal"; ERF = "erf"; FLOOR = "floor"; CEIL = "ceil"; TRUNC = "trunc"  # noqa: E702
    ROUND = "round"; SIGN = "sign"; NOT = "not"; ISNAN = "isnan"  # noqa: E702
    ERFC = "erfc"; SIGNBIT = "signbit"; BITNOT = "bitnot"  # noqa: E702
    # binary math
    ADD = "add"; SUB = "sub"; MUL = "mul"; TRUEDIV = "truediv"; POW = "pow"  # noqa: E702
    MAXIMUM = "maximum"; MINIMUM = "minimum"  # noqa: E702
    EQ = "eq"; NE = "ne"; LT = "lt"; LE = "le"; GT = "gt"; GE = "ge"  # noqa: E702
    AND = "and"; OR = "or"; XOR = "xor"  # bitwise (on bools: logical)  # noqa: E702
    SHL = "shl"; SHR = "shr"; ATAN2 = "atan2"; FMOD = "fmod"  # noqa: E702
    # indirect indexing: args (offset[, mask]): buffer[offset] (0 where mask is false); attr: buffer name
    INDIRECT_LOAD = "indirect_load"
    # args (index, size): index if 0 <= index < size, else 0 and the kernel's index-error flag is set
    CHECK_INDEX = "check_index"
    # args (divisor,): an integer divisor if nonzero, else 1 and the kernel's error flag is set (eager
    # raises ZeroDivisionError). Integer TRUEDIV and FMOD divide only by checked or nonzero divisors.
    CHECK_DIVISOR = "check_divisor"


class ReductionType(enum.Enum):
    SUM = "sum"
    PROD = "prod"
    MAX = "max"
    MIN = "min"
    ARGMAX = "argmax"
    ARGMIN = "argmin"
    ANY = "any"  # logical or, over bools
    WELFORD = "welford"  # sum of squared deviations from the mean, in one pass (for var)


UNARY_OPS = frozenset({
    LoopOp.NEG, LoopOp.ABS, LoopOp.EXP, LoopOp.LOG, LoopOp.LOG1P, LoopOp.EXPM1, LoopOp.SIN, LoopOp.COS,
    LoopOp.TAN, LoopOp.TANH, LoopOp.SQRT, LoopOp.RSQRT, LoopOp.RECIPROCAL, LoopOp.ERF, LoopOp.FLOOR,
    LoopOp.CEIL, LoopOp.TRUNC, LoopOp.ROUND, LoopOp.SIGN, LoopOp.NOT, LoopOp.ISNAN, LoopOp.ERFC, LoopOp.SIGNBIT,
    LoopOp.BITNOT,
})
BINARY_OPS = frozenset({
    LoopOp.ADD, LoopOp.SUB, LoopOp.MUL, LoopOp.TRUEDIV, LoopOp.POW, LoopOp.MAXIMUM, LoopOp.MINIMUM,
    LoopOp.EQ, LoopOp.NE, LoopOp.LT, LoopOp.LE, LoopOp.GT, LoopOp.GE, LoopOp.AND, LoopOp.OR, LoopOp.XOR,
    LoopOp.SHL, LoopOp.SHR, LoopOp.ATAN2, LoopOp.FMOD,
})
# Ops that cost about ten simple ones (polynomial math): a value computed with them is stored
# rather than recomputed when several consumers read it (see REALIZE_COST in graph.py).
TRANSCENDENTAL = frozenset({LoopOp.EXP, LoopOp.LOG, LoopOp.LOG1P, LoopOp.EXPM1, LoopOp.SIN, LoopOp.COS,
                            LoopOp.TAN, LoopOp.TANH, LoopOp.ERF, LoopOp.ERFC, LoopOp.POW,
                            LoopOp.ATAN2, LoopOp.FMOD})


def op_cost(kind: "LoopOp") -> int:
    return 8 if kind in TRANSCENDENTAL else 1


# Ops that set the kernel's error flag on bad data (the wrapper then lets eager raise its own error).
ERROR_CHECKS = frozenset({LoopOp.CHECK_INDEX, LoopOp.CHECK_DIVISOR})

COMPARISONS = frozenset({LoopOp.EQ, LoopOp.NE, LoopOp.LT, LoopOp.LE, LoopOp.GT, LoopOp.GE, LoopOp.NOT,
                         LoopOp.ISNAN, LoopOp.SIGNBIT})


def exact_key(value):
    """`value` as a key that equals another only for the same bits: floats by their IEEE pattern
    (0.0 and -0.0 differ, a NaN equals itself), containers element by element."""
    if isinstance(value, float):
        return float, struct.pack("<d", value)
    if isinstance(value, tuple):
        return tuple(exact_key(v) for v in value)
    return value


@dataclass(frozen=True, eq=False, repr=False)
class LoopNode:
    op: LoopOp
    args: tuple
    dtype: torch.dtype
    attr: object = None

    def __post_init__(self):
        key = (self.op, self.args, self.dtype, exact_key(self.attr))
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return self is other or (isinstance(other, LoopNode) and self._hash == other._hash and self._key == other._key)

    def __repr__(self):
        return format_body(self)


def load(buffer: str, index, dtype) -> LoopNode:
    return LoopNode(LoopOp.LOAD, (), dtype, (buffer, index))


def indirect_load(buffer: str, offset: LoopNode, dtype, mask: LoopNode | None = None) -> LoopNode:
    """buffer[offset] for a computed int64 offset (gathers); 0 where `mask` is false (never read there)."""
    return LoopNode(LoopOp.INDIRECT_LOAD, (offset,) if mask is None else (offset, mask), dtype, (buffer, None))


LOADS = frozenset({LoopOp.LOAD, LoopOp.INDIRECT_LOAD})  # nodes reading a buffer: attr[0] is its name


def constant(value, dtype) -> LoopNode:
    """`value` as `dtype` holds it: integers wrap (-1 is 255 in uint8, as torch.full), floats keep their bits."""
    if dtype == torch.bool:
        value = bool(value)
    elif not (dtype.is_floating_point or dtype.is_complex) and isinstance(value, int):
        info = torch.iinfo(dtype)
        value = (value - info.min) % (1 << info.bits) + info.min
    return LoopNode(LoopOp.CONSTANT, (), dtype, value)


def op(kind: LoopOp, *args, dtype=None) -> LoopNode:
    if dtype is None:
        dtype = torch.bool if kind in COMPARISONS else args[-1].dtype
    return LoopNode(kind, tuple(args), dtype)


def to_dtype(x: LoopNode, dtype) -> LoopNode:
    return x if x.dtype == dtype else LoopNode(LoopOp.TO_DTYPE, (x,), dtype)


def where(cond, a, b) -> LoopNode:
    return LoopNode(LoopOp.WHERE, (cond, a, b), a.dtype)


def walk(root: LoopNode):
    """Each distinct node once, operands before users."""
    seen, order, stack = set(), [], [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))
    return order


def format_body(root: LoopNode) -> str:
    """`t0 = load(buf0, 4*i0 + i1); t1 = exp(t0); ...` — one line per distinct node."""
    names, lines = {}, []
    for n in walk(root):
        name = f"t{len(names)}"
        names[n] = name
        if n.op is LoopOp.LOAD:
            rhs = f"load({n.attr[0]}, {n.attr[1]!r})"
        elif n.op is LoopOp.INDIRECT_LOAD:
            rhs = f"indirect_load({n.attr[0]}, {', '.join(names[a] for a in n.args)})"
        elif n.op in (LoopOp.CONSTANT, LoopOp.INDEX_EXPR, LoopOp.LOCAL):
            rhs = f"{n.op.value}({n.attr!r})"
        else:
            rhs = f"{n.op.value}({', '.join(names[a] for a in n.args)})"
        lines.append(f"{name} = {rhs}: {str(n.dtype).replace('torch.', '')}")
    return "; ".join(lines)
