"""The real instructions behind one normalised instruction, as a graph break runs them.

decode.py folds several CPython instructions into one normalised instruction (3.11
KW_NAMES+PRECALL+CALL, 3.12 KW_NAMES+CALL, 3.13 LOAD_CONST kwnames+CALL_KW); a break runs all
of them natively. On 3.13 a TO_BOOL feeding POP_JUMP_IF_TRUE/FALSE is one conditional jump.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import emit
from .errors import BytecodeError, CannotResume
from .flow import Flow, Step

# Instructions a break can never run natively: frame set-up, generator and exception-handler
# machinery, and anything whose meaning depends on the position in the original code.
NOT_BREAKABLE = frozenset({
    "RESUME", "NOP", "CACHE", "EXTENDED_ARG", "MAKE_CELL", "COPY_FREE_VARS", "LOAD_CLOSURE",
    "RETURN_VALUE", "RETURN_CONST", "RETURN_GENERATOR", "YIELD_VALUE", "SEND", "END_SEND",
    "GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH", "END_ASYNC_FOR",
    "CLEANUP_THROW", "ASYNC_GEN_WRAP", "PUSH_EXC_INFO", "POP_EXCEPT", "RERAISE",
    "WITH_EXCEPT_START", "CHECK_EXC_MATCH", "CHECK_EG_MATCH", "PREP_RERAISE_STAR",
    "END_FOR", "FOR_ITER", "LOAD_LOCALS", "IMPORT_STAR", "SETUP_ANNOTATIONS",
    "INTERPRETER_EXIT", "ENTER_EXECUTOR", "KW_NAMES", "PRECALL", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
})
# 3.11's jumps that keep their operand when they jump (forward-only there).
OR_POP_JUMPS = frozenset({"JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP"})


def _may_push_null(step: Step) -> bool:
    """Method loads and NULL-pushing global loads leave a NULL or a value depending on the object."""
    if step.opname in ("PUSH_NULL", "LOAD_METHOD", "LOAD_SUPER_ATTR"):
        return True
    if step.opname == "LOAD_GLOBAL" or (step.opname == "LOAD_ATTR" and not emit.HAS_PRECALL):
        return bool(step.arg & 1)
    return False


@dataclass(frozen=True)
class Group:
    """Consecutive real instructions run natively by a break, first to last."""
    steps: tuple[Step, ...]
    test: str | None        # conditional jump: "true" | "false" | "none" | "not_none"

    @property
    def start(self) -> int:
        return self.steps[0].offset

    @property
    def last(self) -> Step:
        return self.steps[-1]

    @property
    def next_offset(self) -> int | None:
        """Where execution continues when the group falls through."""
        return self.last.next_offset if self.last.falls_through else None

    @property
    def consumes_nulls(self) -> bool:
        """Calls consume the NULL of their callable pair; anything else would move a NULL
        into a result, which cannot be stored or passed on."""
        return self.last.opname in ("CALL", "CALL_KW", "CALL_FUNCTION_EX")

    @property
    def jump_offset(self) -> int | None:
        return self.last.jump

    def __repr__(self) -> str:
        return "Group(" + ", ".join(f"{s.offset} {s.opname}" for s in self.steps) + ")"


def group_at(flow: Flow, offset: int) -> Group:
    """The group whose normalised instruction has offset `offset` (decode's Instruction.offset)."""
    index = flow.index_of.get(offset)
    if index is None:
        raise BytecodeError(f"{flow.code.co_name}: no instruction at offset {offset}")
    steps = flow.steps
    anchor = steps[index]
    members = [anchor]

    def previous(position: int) -> int:
        position -= 1
        while position >= 0 and steps[position].opname == "EXTENDED_ARG":
            position -= 1
        return position

    if anchor.opname == "CALL":
        position = previous(index)
        if position >= 0 and steps[position].opname == "PRECALL":
            members.insert(0, steps[position])
            position = previous(position)
        if position >= 0 and steps[position].opname == "KW_NAMES":
            members.insert(0, steps[position])
    elif anchor.opname == "CALL_KW":
        position = previous(index)
        if position < 0 or steps[position].opname != "LOAD_CONST":
            raise BytecodeError(f"{flow.code.co_name}: CALL_KW at {offset} without its names")
        members.insert(0, steps[position])
    elif anchor.opname == "TO_BOOL" and index + 1 < len(steps) and \
            emit.CONDITIONAL_JUMPS.get(steps[index + 1].opname) in ("true", "false"):
        members.append(steps[index + 1])

    last = members[-1]
    test = emit.CONDITIONAL_JUMPS.get(last.opname)
    if anchor.opname in NOT_BREAKABLE:  # (PRECALL and KW_NAMES only ever run as part of a call)
        raise CannotResume(f"graph break at {anchor.opname} (offset {anchor.offset}) is not supported")
    if last.jump is not None and test is None and last.opname not in OR_POP_JUMPS:
        raise CannotResume(f"graph break at jump {last.opname} (offset {last.offset}) is not supported")
    if any(_may_push_null(step) for step in members):
        raise CannotResume(f"graph break at {anchor.opname} (offset {anchor.offset}), which may push "
                           "a NULL the break entry cannot pass on", hint="break at the call instead")
    uses_frame = [s for s in members if s.opname.startswith(("LOAD_FAST", "STORE_FAST", "DELETE_FAST"))
                  or s.opname.endswith("_DEREF")]
    if uses_frame:
        raise CannotResume(f"graph break at {uses_frame[0].opname} (offset {uses_frame[0].offset}), "
                           "which reads or writes the frame's variables")
    return Group(tuple(members), test)
