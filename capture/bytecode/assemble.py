"""Assemble a `bytecode.Bytecode` into a code object that has passed verification, and render
code objects as `dis` text for KILN_LOGS=bytecode."""
from __future__ import annotations

import dis
import io
import logging
import types

from bytecode import Bytecode, ControlFlowGraph, Instr

from .errors import BytecodeError
from .flow import Flow
from .verify import StackAnalysis, analyse

log = logging.getLogger("kiln.bytecode")


def assemble(bytecode: Bytecode) -> tuple[types.CodeType, StackAnalysis]:
    """bytecode's own stack-size computation, then our independent analysis of the resulting
    code object. Anything wrong raises BytecodeError; the code object is never run.

    bytecode's count can be too low for resume functions: its control-flow graph does not
    follow the prologue's jump into the middle of a try region to the region's handler. Our
    analysis follows every exception edge (it equals CPython's own co_stacksize on the
    standard library), so the larger of the two is used."""
    try:
        graph = ControlFlowGraph.from_bytecode(bytecode)
        stacksize = graph.compute_stacksize(check_pre_and_post=True, compute_exception_stack_depths=False)
        code = bytecode.to_code(stacksize=stacksize, compute_exception_stack_depths=False)
    except BytecodeError:
        raise
    except Exception as error:  # bytecode raises RuntimeError/ValueError/TypeError on bad input
        raise BytecodeError(f"assembling {bytecode.name}: {type(error).__name__}: {error}") from error
    analysis = analyse(code)
    if analysis.max_depth > code.co_stacksize:
        code = code.replace(co_stacksize=analysis.max_depth)
    return code, analysis


def instruction_positions(bytecode: Bytecode, flow: Flow) -> dict[int, int]:
    """dis offset of each original instruction -> index of its `Instr` in `bytecode` (made by
    Bytecode.from_code of the same code). EXTENDED_ARG offsets map to the instruction they
    extend. The opnames must agree one to one, or the copy would not be the original."""
    instruction_indices = [index for index, item in enumerate(bytecode) if isinstance(item, Instr)]
    positions: dict[int, int] = {}
    pending: list[int] = []
    cursor = 0
    for step in flow.steps:
        pending.append(step.offset)
        if step.opname == "EXTENDED_ARG":
            continue
        if cursor >= len(instruction_indices) or bytecode[instruction_indices[cursor]].name != step.opname:
            found = bytecode[instruction_indices[cursor]].name if cursor < len(instruction_indices) else "end"
            raise BytecodeError(f"{flow.code.co_name}: instruction at offset {step.offset} is "
                                f"{step.opname} in dis but {found} in bytecode")
        for offset in pending:
            positions[offset] = instruction_indices[cursor]
        pending.clear()
        cursor += 1
    if cursor != len(instruction_indices):
        raise BytecodeError(f"{flow.code.co_name}: bytecode has more instructions than dis")
    return positions


def render(code: types.CodeType) -> str:
    """`dis` text of one code object (with its exception table)."""
    out = io.StringIO()
    dis.dis(code, file=out, depth=0)
    return out.getvalue()


def log_generated(what: str, code: types.CodeType) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s (%s:%s):\n%s", what, code.co_filename, code.co_firstlineno, render(code))
