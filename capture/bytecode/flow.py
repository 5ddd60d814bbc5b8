"""The control flow of a code object at the level of real instructions (dis offsets): each
instruction's stack effect and successors (fallthrough, jump, exception handler). The verifier
and the liveness analysis both walk this; it knows nothing of generated code.
"""
from __future__ import annotations

import dis
import types
from dataclasses import dataclass

from .decode import ExceptionTableEntry as ExceptionEntry, covering, exception_table
from .errors import BytecodeError
from .stack_effects import FINAL, pops_and_pushes

_JUMPS = frozenset(getattr(dis, "hasjump", ())) | frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


@dataclass(frozen=True)
class Step:
    """One instruction as the flow sees it. `pre` is how many items it needs on the stack
    (negative), `post` what it leaves on top, for each way it can go."""
    offset: int
    opname: str
    arg: int | None
    argval: object
    lineno: int | None
    next_offset: int | None          # the following instruction (None at the end)
    falls_through: bool              # False after return, raise, unconditional jump
    jump: int | None                 # jump target offset, if it jumps
    effect: tuple[int, int]          # (pre, post) when falling through
    jump_effect: tuple[int, int] | None


class Flow:
    """dis-level control flow of one code object."""

    def __init__(self, code: types.CodeType):
        self.code = code
        raw = [i for i in dis.get_instructions(code) if i.opname != "CACHE"]
        self.steps: list[Step] = []
        self.index_of: dict[int, int] = {}
        lineno = code.co_firstlineno
        for position, instruction in enumerate(raw):
            lineno = _lineno(instruction) or lineno
            following = raw[position + 1].offset if position + 1 < len(raw) else None
            self.index_of[instruction.offset] = position
            self.steps.append(_step(instruction, following, lineno))
        self.entries = exception_table(code)
        self.covering = covering(self.entries, [step.offset for step in self.steps])  # offset -> row

    def step_at(self, offset: int) -> Step:
        try:
            return self.steps[self.index_of[offset]]
        except KeyError:
            raise BytecodeError(f"{self.code.co_name}: no instruction at offset {offset}") from None

    def entry_covering(self, offset: int) -> ExceptionEntry | None:
        """The exception-table row active at `offset` (rows never overlap)."""
        return self.covering.get(offset)

    def is_with_handler(self, target: int) -> bool:
        """Does the handler at `target` start like a `with` block's cleanup (3.11-3.13)?"""
        index = self.index_of.get(target)
        return (index is not None and index + 1 < len(self.steps)
                and self.steps[index].opname == "PUSH_EXC_INFO"
                and self.steps[index + 1].opname == "WITH_EXCEPT_START")


def _lineno(instruction: dis.Instruction) -> int | None:
    positions = getattr(instruction, "positions", None)
    if positions is not None and positions.lineno is not None:
        return positions.lineno
    return None


def _effect(opname: str, arg: int | None, jump: bool) -> tuple[int, int]:
    pops, pushes = pops_and_pushes(opname, arg, jump)
    return -pops, pushes


def _step(instruction: dis.Instruction, following: int | None, lineno: int | None) -> Step:
    opname, arg = instruction.opname, instruction.arg
    if instruction.opcode < dis.HAVE_ARGUMENT:
        arg = None
    jumps = instruction.opcode in _JUMPS
    return Step(
        offset=instruction.offset, opname=opname, arg=arg, argval=instruction.argval, lineno=lineno,
        next_offset=following, falls_through=opname not in FINAL,
        jump=instruction.argval if jumps else None,
        effect=_effect(opname, arg, False),
        jump_effect=_effect(opname, arg, True) if jumps else None,
    )
