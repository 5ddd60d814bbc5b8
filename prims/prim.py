"""The Prim object, its categories and the registry of all prims.

A prim is a strict primitive op: it does no type promotion and no implicit broadcasting.
It carries a meta rule (shapes/dtype/strides, rejecting bad input) and a reference
implementation in torch. Calling a prim while a GraphBuilder is active records a node in
the graph being built; calling it anywhere else runs the reference.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable



class Category(enum.Enum):
    UNARY = "elementwise unary"
    BINARY = "elementwise binary"
    TERNARY = "ternary/where"
    REDUCTION = "reduction"
    SHAPE = "shape/view"
    MOVEMENT = "data movement"
    CONVERT = "type conversion"
    CREATION = "creation"
    RANDOM = "random"
    EXTERN = "extern"
    FALLBACK = "fallback"


class PrimMetaError(ValueError):
    """A prim was called with inputs its meta rule rejects."""


@dataclass(frozen=True, eq=False)
class Prim:
    name: str
    category: Category
    meta: Callable[..., Any]  # tensor-likes -> TensorMeta (or tuple of them)
    ref: Callable[..., Any]  # torch reference implementation
    doc: str
    extra: dict = field(default_factory=dict, repr=False)  # per-prim data, e.g. the torch fn of a unary op

    def __post_init__(self):
        # torch.fx reads these to print a call_function target as `prims.<name>`.
        object.__setattr__(self, "__name__", self.name)
        object.__setattr__(self, "__qualname__", self.name)
        object.__setattr__(self, "__module__", "prims")

    def __call__(self, *args, **kwargs):
        from .builder import active_builder

        builder = active_builder()
        if builder is not None:
            return builder.emit(self, args, kwargs)
        return self.ref(*args, **kwargs)

    def __repr__(self) -> str:
        return f"kiln.{self.name}"


PRIMS: dict[str, Prim] = {}


def register_prim(name: str, category: Category, meta: Callable, doc: str, **extra) -> Callable:
    """Decorator over a reference implementation: registers `Prim(name, ...)` and returns it."""

    def wrap(ref: Callable) -> Prim:
        if name in PRIMS:
            raise ValueError(f"prim {name!r} registered twice")
        p = Prim(name, category, meta, ref, doc, extra)
        PRIMS[name] = p
        return p

    return wrap


def check(cond: bool, prim: str, msg: str) -> None:
    if not cond:
        raise PrimMetaError(f"kiln.{prim}: {msg}")
