"""The op table: every op the generator can emit, keyed by name.

Each entry says how it prints (a template over its first operand `{a}` and named parameters),
which dtypes its first operand may have, how its other operands and parameters are chosen
(`params(g, a)`, given the generator `g` and `a`'s value; None: not applicable to this `a`), how
many names it assigns (0: a statement, e.g. an in-place op) and its family (for the weights).
The entries live in ops_pointwise.py and ops_shape.py; this module holds the types and the rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .values import FLOATS, INTS

# operand dtype rule -> dtype names it admits
DTYPE_RULES = {
    "any": FLOATS + INTS + ("bool",),
    "num": FLOATS + INTS,
    "float": FLOATS,
    "int": INTS,
    "intbool": INTS + ("bool",),
    "bool": ("bool",),
}


def no_params(g, a):
    return {}


@dataclass(frozen=True)
class OpSpec:
    name: str
    template: str                          # "{a}.sum(dim={dim})"; fields: a, then params
    family: str                            # pointwise | division | scalar | cast | reduction | view | index | inplace | matmul | other
    dtypes: str = "any"                    # a key of DTYPE_RULES, for the operand `a`
    params: Callable = no_params           # (g, a value) -> {field: value} | None
    outs: int = 1                          # names assigned; 0 for a statement
    nullary: bool = False                  # no operand `a` (a creation op)
    weight: float = 1.0
    on_inputs: bool = False                # `a` is mostly (85%) an input or a view of one: writes the caller's data
    min_ndim: int = 0


def table(*specs: OpSpec) -> dict[str, OpSpec]:
    out = {}
    for s in specs:
        assert s.name not in out, s.name
        out[s.name] = s
    return out


def _all_ops() -> dict[str, OpSpec]:
    from .ops_pointwise import POINTWISE
    from .ops_shape import SHAPE

    both = dict(POINTWISE)
    for name, spec in SHAPE.items():
        assert name not in both, name
        both[name] = spec
    return both


OPS: dict[str, OpSpec] = _all_ops()

# how often each family is picked (before the per-op weights)
FAMILY_WEIGHTS = {"pointwise": 26, "division": 10, "scalar": 10, "cast": 5, "reduction": 16, "view": 14, "index": 7,
                  "inplace": 12, "matmul": 4, "other": 5}
