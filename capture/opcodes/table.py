"""The opcode handler table: normalised opname -> `handler(tx, inst)`.

interpreter.py registers its core handlers here and imports every module of this package, each
of which registers its own; none of them imports the interpreter.
"""
from __future__ import annotations

from typing import Callable

HANDLERS: dict[str, Callable] = {}


def handles(*opnames: str):
    def register(handler):
        for opname in opnames:
            HANDLERS[opname] = handler
        return handler
    return register
