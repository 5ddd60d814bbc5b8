"""Every emit helper, assembled into small functions, verified and run: the same source must
work on 3.11, 3.12 and 3.13 (NULL order, PRECALL, TO_BOOL, jump spellings). Torch-free."""
from __future__ import annotations

import types

from bytecode import Bytecode, Label

from kiln.capture.bytecode import emit
from kiln.capture.bytecode.assemble import assemble

from .functions import FLAG, SetFlag


def _function(body: list, argnames=()) -> types.FunctionType:
    bytecode = Bytecode(emit.resume_start() + body)
    bytecode.argnames = list(argnames)
    bytecode.argcount = len(argnames)
    bytecode.name = "generated"
    code, _analysis = assemble(bytecode)
    return types.FunctionType(code, {"__builtins__": __builtins__, "SetFlag": SetFlag})


def _branch(test: str) -> types.FunctionType:
    taken = Label()
    return _function(emit.load_fast("x") + emit.pop_jump_if(test, taken) + emit.load_const("fell through")
                     + emit.return_value() + [taken] + emit.load_const("jumped") + emit.return_value(), ("x",))


def _cases():
    yield "global call with NULL", _function(
        emit.load_global("max", push_null=True) + emit.load_fast("a") + emit.load_fast("b") + emit.call(2)
        + emit.return_value(), ("a", "b")), (3, 7), 7
    yield "constant callable", _function(
        emit.call_function(emit.load_const(divmod), [emit.load_fast("a"), emit.load_const(4)])
        + emit.return_value(), ("a",)), (11,), (2, 3)
    yield "tuple, list, unpack, subscript", _function(
        emit.load_fast("a") + emit.load_fast("b") + emit.build_tuple(2) + emit.unpack_sequence(2)
        + emit.store_fast("first") + emit.store_fast("second") + emit.load_fast("second")
        + emit.load_fast("first") + emit.build_list(2) + emit.subscript_const(1) + emit.return_value(),
        ("a", "b")), (1, 2), 1  # UNPACK_SEQUENCE leaves item 0 on top
    skip = Label()
    yield "jump forward and pop", _function(
        emit.load_const(1) + emit.pop_top() + emit.jump_forward(skip) + emit.load_const("dead")
        + emit.return_value() + [skip] + emit.load_const("after") + emit.return_value()), (), "after"
    for test, value, expected in (("true", 2, "jumped"), ("true", 0, "fell through"),
                                  ("false", [], "jumped"), ("false", [0], "fell through"),
                                  ("none", None, "jumped"), ("none", 0, "fell through"),
                                  ("not_none", 0, "jumped"), ("not_none", None, "fell through")):
        yield f"pop_jump_if {test} on {value!r}", _branch(test), (value,), expected
    yield "with entry and exit", _function(
        emit.call_function(emit.load_global("SetFlag"), []) + emit.enter_with() + emit.store_fast("exit")
        + emit.call_function(emit.load_const(lambda: FLAG[0]), []) + emit.store_fast("inside")
        + emit.load_fast("exit") + emit.call_exit()
        + emit.load_fast("inside") + emit.call_function(emit.load_const(lambda: FLAG[0]), [])
        + emit.build_tuple(2) + emit.return_value()), (), (True, False)


def check() -> dict:
    checked, failures = 0, []
    for name, function, args, expected in _cases():
        FLAG[0] = False
        got = function(*args)
        checked += 1
        if got != expected:
            failures.append(f"{name}: got {got!r}, expected {expected!r}")
    return {"checked": checked, "failures": failures, "unsupported": []}
