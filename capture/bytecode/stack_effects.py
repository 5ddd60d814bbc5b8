"""How many stack items each instruction reads, per opcode (CPython 3.11-3.13 bytecodes.c).

dis.stack_effect gives only the net change; the verifier also needs what an instruction
consumes, or it could not see LOAD_ATTR run on an empty stack. pushes = pops + net.
Where a version reads deeper (error paths included), the deeper count is used: it can only
make verification stricter.
"""
from __future__ import annotations

import dis
import sys
from typing import Callable

from .errors import BytecodeError

_V12 = sys.version_info >= (3, 12)
_V13 = sys.version_info >= (3, 13)


def _bits(arg: int) -> int:
    return bin(arg & 0xF).count("1")


_FIXED: dict[int, tuple[str, ...]] = {
    0: ("NOP", "RESUME", "CACHE", "EXTENDED_ARG", "LOAD_CONST", "LOAD_FAST", "LOAD_FAST_CHECK",
        "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST", "LOAD_GLOBAL", "LOAD_DEREF", "LOAD_CLOSURE",
        "LOAD_CLASSDEREF", "LOAD_NAME", "LOAD_ASSERTION_ERROR", "LOAD_BUILD_CLASS", "LOAD_LOCALS",
        "PUSH_NULL", "MAKE_CELL", "COPY_FREE_VARS", "KW_NAMES", "JUMP_FORWARD", "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT", "DELETE_FAST", "DELETE_DEREF", "DELETE_GLOBAL",
        "DELETE_NAME", "SETUP_ANNOTATIONS", "RETURN_CONST", "RETURN_GENERATOR", "ENTER_EXECUTOR",
        "RESERVED"),
    1: ("POP_TOP", "RETURN_VALUE", "STORE_FAST", "STORE_DEREF", "STORE_GLOBAL", "STORE_NAME",
        "STORE_FAST_LOAD_FAST", "DELETE_ATTR", "UNARY_NEGATIVE", "UNARY_NOT", "UNARY_INVERT",
        "UNARY_POSITIVE", "TO_BOOL", "GET_ITER", "GET_YIELD_FROM_ITER", "GET_AITER", "GET_ANEXT",
        "GET_AWAITABLE", "GET_LEN", "LOAD_ATTR", "LOAD_METHOD", "POP_JUMP_IF_TRUE",
        "POP_JUMP_IF_FALSE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
        "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_FORWARD_IF_NONE",
        "POP_JUMP_FORWARD_IF_NOT_NONE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_FALSE",
        "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE", "JUMP_IF_TRUE_OR_POP",
        "JUMP_IF_FALSE_OR_POP", "FOR_ITER", "BEFORE_WITH", "BEFORE_ASYNC_WITH", "UNPACK_SEQUENCE",
        "UNPACK_EX", "IMPORT_FROM", "IMPORT_STAR", "PUSH_EXC_INFO", "POP_EXCEPT", "YIELD_VALUE",
        "LOAD_FROM_DICT_OR_DEREF", "LOAD_FROM_DICT_OR_GLOBALS", "MATCH_MAPPING", "MATCH_SEQUENCE",
        "PRINT_EXPR", "CALL_INTRINSIC_1", "CONVERT_VALUE", "FORMAT_SIMPLE", "ASYNC_GEN_WRAP",
        "EXIT_INIT_CHECK", "LIST_TO_TUPLE", "INTERPRETER_EXIT"),
    2: ("BINARY_OP", "BINARY_SUBSCR", "COMPARE_OP", "IS_OP", "CONTAINS_OP", "STORE_ATTR",
        "DELETE_SUBSCR", "IMPORT_NAME", "STORE_FAST_STORE_FAST", "CHECK_EXC_MATCH",
        "CHECK_EG_MATCH", "PREP_RERAISE_STAR", "MATCH_KEYS", "SEND", "END_ASYNC_FOR", "END_SEND",
        "CALL_INTRINSIC_2", "SET_FUNCTION_ATTRIBUTE", "FORMAT_WITH_SPEC"),
    3: ("STORE_SUBSCR", "BINARY_SLICE", "MATCH_CLASS", "CLEANUP_THROW", "LOAD_SUPER_ATTR"),
    4: ("STORE_SLICE", "WITH_EXCEPT_START"),
}

POPS: dict[str, Callable[[int], int]] = {name: (lambda arg, n=n: n) for n, names in _FIXED.items() for name in names}
POPS.update({
    "END_FOR": lambda arg: 1 if _V13 else 2,
    "COPY": lambda arg: arg, "SWAP": lambda arg: arg, "RAISE_VARARGS": lambda arg: arg,
    "RERAISE": lambda arg: 1 + arg,               # reads lasti below the exception when arg
    "BUILD_TUPLE": lambda arg: arg, "BUILD_LIST": lambda arg: arg, "BUILD_SET": lambda arg: arg,
    "BUILD_STRING": lambda arg: arg, "BUILD_SLICE": lambda arg: arg,
    "BUILD_MAP": lambda arg: 2 * arg, "BUILD_CONST_KEY_MAP": lambda arg: arg + 1,
    "LIST_APPEND": lambda arg: arg + 1, "SET_ADD": lambda arg: arg + 1, "MAP_ADD": lambda arg: arg + 2,
    "LIST_EXTEND": lambda arg: arg + 1, "SET_UPDATE": lambda arg: arg + 1,
    "DICT_UPDATE": lambda arg: arg + 1,
    "DICT_MERGE": lambda arg: arg + (4 if _V13 else 3),   # reads the callable for its error message
    # 3.11's compiler counts the arguments as popped by PRECALL; CALL then reads the callable pair.
    "CALL": lambda arg: arg + 2 if _V12 else 2, "PRECALL": lambda arg: arg + 2, "CALL_KW": lambda arg: arg + 3,
    "CALL_FUNCTION_EX": lambda arg: 3 + (arg & 1),
    "MAKE_FUNCTION": lambda arg: 1 if _V13 else 1 + _bits(arg),
    "FORMAT_VALUE": lambda arg: 2 if arg & 4 else 1,
})

FINAL = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD",
                   "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"})


def pops_and_pushes(opname: str, arg: int | None, jump: bool) -> tuple[int, int]:
    """(items read, items left on top) for one way out of the instruction."""
    rule = POPS.get(opname)
    if rule is None:
        raise BytecodeError(f"no stack-effect rule for {opname}")
    pops = rule(arg or 0)
    pushes = pops + dis.stack_effect(dis.opmap[opname], arg, jump=jump)
    if pushes < 0:
        raise BytecodeError(f"stack-effect rule for {opname}({arg}) reads {pops}, "
                            f"fewer than it pops")
    return pops, pushes
