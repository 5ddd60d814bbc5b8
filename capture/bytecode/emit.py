"""Normalised instruction emitters for generated code: one place that knows how 3.11, 3.12
and 3.13 spell calls, NULLs, conditional jumps and `with` entry and exit.

Every function returns a list of `bytecode.Instr` (and Labels) that generated code splices
together. Jumps emitted here are forward jumps only; generated code is laid out so that every
label it targets comes later.
"""
from __future__ import annotations

import sys
from typing import Any

from bytecode import Instr, Label

from .errors import CannotResume

VERSION = sys.version_info[:2]
SUPPORTED_VERSIONS = ((3, 11), (3, 12), (3, 13))
# 3.11/3.12 push NULL below the callable; 3.13 pushes it above (callable, NULL, args...).
NULL_AFTER_CALLABLE = VERSION >= (3, 13)
HAS_PRECALL = VERSION == (3, 11)
# 3.13's POP_JUMP_IF_TRUE/FALSE require an exact bool: the compiler emits TO_BOOL first.
NEEDS_TO_BOOL = VERSION >= (3, 13)

# Conditional jumps by what they test, spelled per version (3.11 has direction-specific names).
_POP_JUMP = {
    "true": "POP_JUMP_FORWARD_IF_TRUE" if HAS_PRECALL else "POP_JUMP_IF_TRUE",
    "false": "POP_JUMP_FORWARD_IF_FALSE" if HAS_PRECALL else "POP_JUMP_IF_FALSE",
    "none": "POP_JUMP_FORWARD_IF_NONE" if HAS_PRECALL else "POP_JUMP_IF_NONE",
    "not_none": "POP_JUMP_FORWARD_IF_NOT_NONE" if HAS_PRECALL else "POP_JUMP_IF_NOT_NONE",
}

# Original opname of a conditional jump -> what it tests (every version's spelling).
CONDITIONAL_JUMPS = {
    f"POP_JUMP{direction}_IF_{test}": test.lower()
    for direction in ("", "_FORWARD", "_BACKWARD")
    for test in ("TRUE", "FALSE", "NONE", "NOT_NONE")
}


def check_version() -> None:
    if VERSION not in SUPPORTED_VERSIONS:
        raise CannotResume(f"bytecode generation for Python {VERSION[0]}.{VERSION[1]} is not supported")


def at_line(instructions: list, lineno: int | None) -> list:
    """Give generated instructions a line number, so tracebacks name the user's line."""
    if lineno is not None:
        for instruction in instructions:
            if isinstance(instruction, Instr) and instruction.location is None:
                instruction.lineno = lineno
    return instructions


def load_fast(name: str) -> list:
    return [Instr("LOAD_FAST", name)]


def load_fast_checked(name: str) -> list:
    """LOAD_FAST that raises UnboundLocalError on an unbound local (3.11's LOAD_FAST always does)."""
    return [Instr("LOAD_FAST" if HAS_PRECALL else "LOAD_FAST_CHECK", name)]


def store_fast(name: str) -> list:
    return [Instr("STORE_FAST", name)]


def load_const(value: Any) -> list:
    return [Instr("LOAD_CONST", value)]


def load_global(name: str, push_null: bool = False) -> list:
    """LOAD_GLOBAL; with push_null the NULL lands where this version's CALL expects it."""
    return [Instr("LOAD_GLOBAL", (push_null, name))]


def push_null() -> list:
    return [Instr("PUSH_NULL")]


def pop_top() -> list:
    return [Instr("POP_TOP")]


def callable_and_null(load_callable: list) -> list:
    """Push a callable with the NULL that marks 'no self' in the version's order."""
    if NULL_AFTER_CALLABLE:
        return [*load_callable, Instr("PUSH_NULL")]
    return [Instr("PUSH_NULL"), *load_callable]


def call(argc: int) -> list:
    """CALL with `argc` positional args over [callable/NULL pair, args...]."""
    if HAS_PRECALL:
        return [Instr("PRECALL", argc), Instr("CALL", argc)]
    return [Instr("CALL", argc)]


def call_function(load_callable: list, args: list[list]) -> list:
    """callable(*args), result on the stack."""
    code = callable_and_null(load_callable)
    for load_arg in args:
        code += load_arg
    return code + call(len(args))


def build_tuple(count: int) -> list:
    return [Instr("BUILD_TUPLE", count)]


def build_list(count: int) -> list:
    return [Instr("BUILD_LIST", count)]


def unpack_sequence(count: int) -> list:
    return [Instr("UNPACK_SEQUENCE", count)]


def subscript_const(index: Any) -> list:
    """TOS[index] for a constant index."""
    return [Instr("LOAD_CONST", index), Instr("BINARY_SUBSCR")]


def return_value() -> list:
    return [Instr("RETURN_VALUE")]


def jump_forward(label: Label) -> list:
    return [Instr("JUMP_FORWARD", label)]


def pop_jump_if(test: str, label: Label) -> list:
    """Pop TOS; jump to `label` (forward) if it is truthy/falsy/None/not None."""
    code = [Instr("TO_BOOL")] if NEEDS_TO_BOOL and test in ("true", "false") else []
    return code + [Instr(_POP_JUMP[test], label)]


def enter_with() -> list:
    """ctx -> ctx.__exit__ (bound), after calling ctx.__enter__() and dropping its result."""
    return [Instr("BEFORE_WITH"), Instr("POP_TOP")]


def call_exit() -> list:
    """exit -> (nothing): exit(None, None, None), as the compiler ends a `with` block."""
    return [Instr("LOAD_CONST", None) for _ in range(3)] + call(2) + [Instr("POP_TOP")]


def resume_start() -> list:
    return [Instr("RESUME", 0)]


def copy_free_vars(count: int) -> list:
    return [Instr("COPY_FREE_VARS", count)] if count else []


def reraise() -> list:
    """exc -> re-raise it with its traceback."""
    return [Instr("RERAISE", 0)]
