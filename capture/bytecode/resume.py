"""Resume functions: a new code object that restores the value stack and locals of a frame
of `original` stopped at `offset`, then jumps there in a full copy of the original
instructions (loops may jump backwards past the resume point).

    resume_at_<offset>([self,] __stack0, ..., __stackN-1, <live locals>)
        [COPY_FREE_VARS n]  RESUME 0
        push each stack slot: VALUE -> LOAD_FAST __stacki, NULL -> PUSH_NULL,
                              WITH  -> LOAD_FAST __stacki; BEFORE_WITH; POP_TOP (re-enters ctx)
        JUMP_FORWARD to the copy of `offset`
        <every original instruction, exception table included>

The exception table is copied with its stack depths unchanged: the prologue rebuilds exactly
the stack the original had at `offset`, which the verifier checks. Locals the caller does
not pass stay unbound, so loads of them are made checking (LOAD_FAST_CHECK) instead of
trusting the compiler's proof, which held only for the original entry.

Cell variables (the original makes a closure over some of its locals) become free variables:
the resume code has no cellvars, its co_freevars are the original's cellvars then the
original's freevars, its MAKE_CELLs are dropped and every CellVar argument (LOAD_DEREF,
STORE_DEREF, DELETE_DEREF, LOAD_CLOSURE...) names the free variable instead. The caller
passes the cells as the closure (`ResumeCode.cell_names` first, then the original closure),
so a function the frame made before the break and the resumed frame share each cell, as
TorchDynamo's resume functions do. A cell made again inside the code (3.12+ inlined
comprehensions whose variable a closure captures: MAKE_CELL after RESUME, or the cell's slot
read as a fast local) cannot be passed this way: CannotResume.

Zero-argument super() reads the frame's first local and its `__class__` cell (3.11's super()
call; 3.12+'s LOAD_SUPER_ATTR too, on its generic path): the resume code of such a method,
while a super() may follow, takes the original's first argument first, under its own name,
where super() finds it.
"""
from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Iterable, Sequence

from bytecode import Bytecode, CellVar, CompilerFlags, FreeVar, Instr, Label

from . import emit
from .assemble import assemble, instruction_positions, log_generated
from .errors import BytecodeError, CannotResume
from .flow import Flow
from .layout import SlotKind
from .liveness import Liveness, super_argument
from .verify import StackAnalysis, analyse, is_generator

_UNCHECKED_LOADS = ("LOAD_FAST", "LOAD_FAST_LOAD_FAST", "STORE_FAST_LOAD_FAST")


@dataclass(frozen=True)
class CodeFacts:
    """What generated code needs to know about one original code object (computed once)."""
    code: types.CodeType
    flow: Flow
    stack: StackAnalysis
    liveness: Liveness


_FACTS: dict[types.CodeType, CodeFacts] = {}


def facts_of(code: types.CodeType) -> CodeFacts:
    facts = _FACTS.get(code)
    if facts is None:
        emit.check_version()
        if is_generator(code):
            raise CannotResume(f"generator or coroutine {code.co_name}: graph breaks in generators "
                               "are not supported", hint="call the generator outside the compiled function")
        flow = Flow(code)
        facts = _FACTS[code] = CodeFacts(code, flow, analyse(code, flow), Liveness(code, flow))
    return facts


@dataclass(frozen=True)
class ResumeCode:
    """A generated resume code object and how to call it."""
    original: types.CodeType
    offset: int
    stack: tuple[SlotKind, ...]
    stack_args: tuple[str, ...]        # one per non-NULL slot, in stack order
    local_names: tuple[str, ...]       # live locals it takes, after the stack args
    code: types.CodeType
    cell_names: tuple[str, ...] = ()   # the original's cellvars: their cells come first in the closure
    leading: tuple[str, ...] = ()      # the first argument, for zero-argument super(): before the stack

    @property
    def arg_names(self) -> tuple[str, ...]:
        return self.leading + self.stack_args + self.local_names

    def make_function(self, f_globals: dict, closure: tuple | None = None) -> types.FunctionType:
        """A function over this code: globals are the original function's; `closure` is the
        cells of `cell_names` (made by the caller) followed by the original function's closure."""
        needed = len(self.code.co_freevars)
        if len(closure or ()) != needed:
            raise BytecodeError(f"{self.code.co_name} needs {needed} closure cells, got {len(closure or ())}")
        return types.FunctionType(self.code, f_globals, self.code.co_name, None, closure if needed else None)

    def __repr__(self) -> str:
        return (f"ResumeCode({self.original.co_qualname} at {self.offset}, "
                f"stack={list(self.stack)!r}, locals={list(self.local_names)})")


_CACHE: dict[tuple, ResumeCode] = {}


def resume_code(original: types.CodeType, offset: int, stack: Sequence[SlotKind],
                available_locals: Iterable[str]) -> ResumeCode:
    """The resume code object for a frame of `original` about to run the instruction at raw
    `offset`, with a value stack of kinds `stack` (bottom first). `available_locals`: the
    locals bound at that point; the function takes those that are live. Cached per
    (code, offset, stack kinds, locals taken)."""
    facts = facts_of(original)
    available_locals = set(available_locals)
    taken = _taken_locals(facts, offset, available_locals)
    leading = tuple(name for name in super_argument(original, facts.flow)
                    if name in facts.liveness.live_at(offset))  # a super() call may follow
    if any(name not in taken for name in leading):
        raise CannotResume(f"{original.co_name} calls zero-argument super() after a graph break, and its "
                           f"first argument {leading[0]!r} is unbound there", hint="write super(Class, self)")
    local_names = tuple(name for name in taken if name not in leading)
    key = (original, offset, tuple(stack), local_names)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _CACHE[key] = _build(facts, offset, tuple(stack), local_names, leading)
    return cached


def clear_cache() -> None:
    _CACHE.clear()
    _FACTS.clear()


def _taken_locals(facts: CodeFacts, offset: int, available: Iterable[str]) -> tuple[str, ...]:
    if offset not in facts.flow.index_of:
        raise BytecodeError(f"{facts.code.co_name}: no instruction at offset {offset}")
    live = facts.liveness.live_at(offset)
    available = set(available) - set(facts.code.co_cellvars)  # (cells are passed in the closure)
    return tuple(name for name in facts.code.co_varnames if name in live and name in available)


def resume_points(code: types.CodeType) -> list[int]:
    """Offsets where a frame of `code` can be resumed (any stack layout permitting)."""
    facts = facts_of(code)
    points = []
    for offset, state in sorted(facts.stack.states.items()):
        try:
            check_resumable(facts, offset, state.depth, check_code=False)
        except (CannotResume, BytecodeError):
            continue
        points.append(offset)
    return points


def check_resumable(facts: CodeFacts, offset: int, depth: int, check_code: bool = True) -> None:
    """Raise unless a frame of facts.code can be rebuilt at `offset` with a stack of `depth`."""
    code = facts.code
    if check_code:
        _check_code(code)
    check_frame_point(facts, offset)
    state = facts.stack.states[offset]
    if state.depth != depth:
        raise BytecodeError(f"{code.co_name}: layout has {depth} stack slots, the frame has "
                            f"{state.depth} at offset {offset}")


def check_frame_point(facts: CodeFacts, offset: int) -> None:
    """Raise unless a frame of facts.code can stand at `offset` between two pieces of generated
    code: reachable, not in the frame's set-up, not inside an exception handler, not between
    instructions that pass interpreter state to each other, and really executed there."""
    code = facts.code
    state = facts.stack.states.get(offset)
    if state is None:
        raise BytecodeError(f"{code.co_name}: offset {offset} is unreachable")
    if state.in_handler:
        raise CannotResume(f"{code.co_name}: graph break or resume inside an exception handler "
                           f"(offset {offset})", hint="move the unsupported code out of the except/finally block")
    first_resume = next((step.offset for step in facts.flow.steps if step.opname == "RESUME"), -1)
    if offset <= first_resume:
        raise BytecodeError(f"{code.co_name}: offset {offset} is in the frame set-up, before RESUME")
    index = facts.flow.index_of[offset]
    previous = facts.flow.steps[index - 1].opname if index else None
    if previous in ("KW_NAMES", "PRECALL"):  # they set interpreter state the next CALL consumes
        raise BytecodeError(f"{code.co_name}: offset {offset} splits a call ({previous} before it)")
    if facts.flow.steps[index].opname == "END_FOR" or (emit.VERSION >= (3, 13) and previous == "END_FOR"):
        # An exhausted FOR_ITER jumps past these (3.12: END_FOR; 3.13: END_FOR, POP_TOP).
        raise BytecodeError(f"{code.co_name}: offset {offset} is skipped by FOR_ITER at run time")


_FAST_OPS = ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "STORE_FAST", "DELETE_FAST",
             "LOAD_FAST_LOAD_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST")


def _check_code(code: types.CodeType) -> None:
    if code.co_cellvars:
        _check_cells(code)
    first = super_argument(code, facts_of(code).flow)
    if first and first[0] in code.co_cellvars:  # super() reads the cell in that slot: not passed
        raise CannotResume(f"{code.co_name} uses zero-argument super() and a closure captures its first "
                           f"argument {first[0]!r}", hint="write super(Class, self)")


def _check_cells(code: types.CodeType) -> None:
    """Each cell must be made once, at the frame's start (MAKE_CELL before RESUME), and used
    only through the *_DEREF/LOAD_CLOSURE ops: then the caller's cells can stand for it."""
    cells = set(code.co_cellvars)
    started = False
    for instr in Bytecode.from_code(code):
        if not isinstance(instr, Instr):
            continue
        if instr.name == "RESUME":
            started = True
        elif instr.name == "MAKE_CELL" and started:
            raise CannotResume(f"{code.co_name} makes the cell of {instr.arg.name!r} again inside its code "
                               "(a comprehension whose variable a closure captures): its cells cannot "
                               "be passed to a resume function",
                               hint="write the comprehension as a for loop, or build the closures in a helper")
        elif instr.name in _FAST_OPS and not _loads_cell(instr, cells):
            names = instr.arg if isinstance(instr.arg, tuple) else (instr.arg,)
            shared = cells.intersection(name for name in names if isinstance(name, str))
            if shared:
                raise CannotResume(f"{code.co_name} reads the cell slot of {sorted(shared)} as a local (a "
                                   "comprehension whose variable a closure captures): its cells cannot be "
                                   "passed to a resume function",
                                   hint="write the comprehension as a for loop, or build the closures in a helper")


def _build(facts: CodeFacts, offset: int, stack: tuple[SlotKind, ...],
           local_names: tuple[str, ...], leading: tuple[str, ...] = ()) -> ResumeCode:
    original = facts.code
    check_resumable(facts, offset, len(stack))
    stack_args = tuple(f"__stack{i}" for i, kind in enumerate(stack) if kind is not SlotKind.NULL)
    clash = set(stack_args) & set(local_names + leading)
    if clash:
        raise CannotResume(f"{original.co_name}: locals named {sorted(clash)} clash with resume arguments")

    body = Bytecode.from_code(original, conserve_exception_block_stackdepth=True)
    target = Label()
    body.insert(instruction_positions(body, facts.flow)[offset], target)
    instructions = _checking_loads(_cells_to_free(list(body), set(original.co_cellvars)),
                                   set(local_names + leading))
    cell_names = tuple(original.co_cellvars)
    freevars = list(cell_names) + list(original.co_freevars)

    prologue = emit.copy_free_vars(len(freevars)) + emit.resume_start()
    for index, kind in enumerate(stack):
        if kind is SlotKind.NULL:
            prologue += emit.push_null()
        else:
            prologue += emit.load_fast(f"__stack{index}")
            if kind is SlotKind.WITH:
                prologue += emit.enter_with()
    prologue += emit.jump_forward(target)
    emit.at_line(prologue, facts.flow.step_at(offset).lineno)

    generated = Bytecode(prologue + instructions)
    generated._copy_attr_from(body)
    generated.name = f"resume_at_{offset}"
    generated.qualname = f"{original.co_qualname}.resume_at_{offset}"
    generated.argnames = list(leading + stack_args + local_names)
    generated.argcount = len(generated.argnames)
    generated.posonlyargcount = 0
    generated.kwonlyargcount = 0
    generated.flags = body.flags & ~(CompilerFlags.VARARGS | CompilerFlags.VARKEYWORDS)
    generated.cellvars = []
    generated.freevars = freevars
    code, analysis = assemble(generated)
    _check_target_depth(code, analysis, len(stack), offset)
    resume = ResumeCode(original, offset, stack, stack_args, local_names, code, cell_names, leading)
    log_generated(f"generated {resume!r}", code)
    return resume


def _loads_cell(instr: Instr, cells: set[str]) -> bool:
    """3.13 spells LOAD_CLOSURE (push the cell itself) as LOAD_FAST of the cell's slot; `bytecode`
    names the slot by a CellVar, or by the plain name when the cell is also an argument."""
    if emit.VERSION < (3, 13) or instr.name != "LOAD_FAST":
        return False
    return isinstance(instr.arg, CellVar) or (isinstance(instr.arg, str) and instr.arg in cells)


def _cells_to_free(instructions: list, cells: set[str]) -> list:
    """The original's cells are the resume code's free variables: no MAKE_CELL, FreeVar args."""
    result = []
    for item in instructions:
        if isinstance(item, Instr):
            if item.name == "MAKE_CELL":
                continue
            if isinstance(item.arg, CellVar) or _loads_cell(item, cells):
                name = item.arg.name if isinstance(item.arg, CellVar) else item.arg
                item = item.copy()
                item.arg = FreeVar(name)
        result.append(item)
    return result


def _checking_loads(instructions: list, passed: set[str]) -> list:
    """Loads of locals the prologue does not set must check for unbound (3.12+ LOAD_FAST and
    the 3.13 pairs do not: they would push NULL and crash later)."""
    if emit.HAS_PRECALL:
        return instructions
    result = []
    for item in instructions:
        if not isinstance(item, Instr) or item.name not in _UNCHECKED_LOADS or \
                isinstance(item.arg, (CellVar, FreeVar)):  # (3.13's LOAD_CLOSURE: a cell, always bound)
            result.append(item)
            continue
        if item.name == "LOAD_FAST":
            names, stores = (item.arg,), ()
        elif item.name == "LOAD_FAST_LOAD_FAST":
            names, stores = item.arg, ()
        else:
            stores, names = (item.arg[0],), (item.arg[1],)
        if all(name in passed for name in names):
            result.append(item)
            continue
        for name in stores:
            result.append(Instr("STORE_FAST", name, location=item.location))
        for name in names:
            opname = "LOAD_FAST" if name in passed else "LOAD_FAST_CHECK"
            result.append(Instr(opname, name, location=item.location))
    return result


def _check_target_depth(code: types.CodeType, analysis: StackAnalysis, depth: int, offset: int) -> None:
    """The prologue's jump must land with the original's stack depth at `offset`."""
    jump = next(step for step in analysis.flow.steps if step.opname == "JUMP_FORWARD")
    landed = analysis.depth_at(jump.jump)
    if landed != depth:
        raise BytecodeError(f"{code.co_name}: prologue reaches the copy of offset {offset} with "
                            f"stack depth {landed}, the original has {depth}")
