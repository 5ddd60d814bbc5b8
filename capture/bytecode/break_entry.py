"""Graph-break entries: the generated code that replaces a frame from its entry up to an
instruction capture cannot trace.

    break entry (params...):
        __kiln_graph_out = graph(*graph_inputs)            # the graph captured so far
        <effects>                                          # side-effect replay, in order
        <rebuild stack items and locals into temporaries>
        re-enter active `with` blocks: ctx.__enter__(), keep ctx.__exit__
        try:                                               # only when a with/try is active
            push the instruction's operands; run it natively (one normalised instruction)
        on exception: exit the with blocks, then resume at the enclosing `except` handler
                      (or re-raise if there is none)
        fall through: exit the with blocks; return resume_at_<next>(stack..., results..., live locals...)
        jump:         exit the with blocks; return resume_at_<target>(...)

A frame with cell variables (it makes closures over its locals) passes them on as cells: the
plan's `cells` are the cell objects (one per co_cellvars name, made by the caller's rebuild and
shared with the functions it re-made over them), and each call of the entry makes the resume
function over those cells followed by the original closure (`_OverCells`). The original
closure is the plan's `closure` value when it has one (the function compiled is one of many
closures of its code, which share one cache: each call passes its own), else the fixed
`closure` given to build_break_entry.

The with blocks are exited before calling a resume function because its prologue re-enters
them (BEFORE_WITH), so a context is entered once per piece of the frame, as Dynamo does.
`__exit__` is called as (None, None, None) on both paths, so context managers that suppress
exceptions are not supported across a break (grad-mode managers never suppress).
"""
from __future__ import annotations

import marshal
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from bytecode import Bytecode, CompilerFlags, Instr, Label, TryBegin, TryEnd

from . import emit
from .assemble import assemble, instruction_positions, log_generated
from .blocks import active_blocks
from .errors import BytecodeError, CannotResume
from .groups import OR_POP_JUMPS, Group, group_at
from .liveness import super_reads
from .layout import Build, Call, Constant, GraphOutput, Local, Null, SlotKind, StackItem, Value, WithExit, slot_kind
from .resume import CodeFacts, ResumeCode, check_frame_point, facts_of, resume_code

_TEMP = "__kiln_"


@dataclass(frozen=True, eq=False)
class BreakPlan:
    """What the tracer knows at a graph break, in terms generated code can rebuild.

    offset: decode's Instruction.offset of the instruction to run natively.
    stack: the value stack before it, bottom first, in CPython's real order for this version
      (3.13 has the NULL above the callable: see emit.NULL_AFTER_CALLABLE).
    locals: the frame's bound fast locals. params: the generated function's parameters,
      which `Local` values read. graph: the compiled graph (called with graph_inputs), or None.
    effects: values evaluated for their side effects after the graph, before the instruction.
    cells: one value per code.co_cellvars name, each a real cell object (the resume function's
      closure starts with them).
    closure: the running function's closure tuple (usually a parameter), or None: the fixed
      closure given to build_break_entry.
    """
    code: types.CodeType
    offset: int
    params: tuple[str, ...]
    stack: tuple[StackItem, ...]
    locals: tuple[tuple[str, Value], ...]
    graph: Any = None
    graph_inputs: tuple[Value, ...] = ()
    effects: tuple[Value, ...] = ()
    cells: tuple[Value, ...] = ()
    closure: Value | None = None

    def __repr__(self) -> str:
        lines = [f"BreakPlan({self.code.co_qualname} at offset {self.offset}, params={list(self.params)})",
                 f"  graph: {'none' if self.graph is None else type(self.graph).__name__}"
                 f"({', '.join(map(repr, self.graph_inputs))})"]
        lines += [f"  effect: {effect!r}" for effect in self.effects]
        lines.append(f"  stack: {list(self.stack)!r}")
        lines.append("  locals: " + ", ".join(f"{name}={value!r}" for name, value in self.locals))
        if self.cells:
            lines.append("  cells: " + ", ".join(f"{name}={value!r}" for name, value in
                                                  zip(self.code.co_cellvars, self.cells)))
        return "\n".join(lines)


@dataclass(frozen=True)
class Successor:
    """Where the frame continues after the native instruction, and what is called there."""
    how: str                     # "next" | "jump" | "exception"
    resume: ResumeCode
    function: Callable           # what the entry calls: the resume function, maybe wrapped

    def __repr__(self) -> str:
        return f"Successor({self.how}: {self.resume!r})"


@dataclass(frozen=True)
class BreakEntry:
    plan: BreakPlan
    group: Group
    code: types.CodeType
    function: types.FunctionType
    successors: tuple[Successor, ...] = field(default=())

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self) -> str:
        return f"BreakEntry({self.group!r}, successors={list(self.successors)!r})"


def build_break_entry(plan: BreakPlan, f_globals: dict, closure: tuple | None = None,
                      wrap_resume: Callable[[types.FunctionType], Callable] | None = None) -> BreakEntry:
    """Generate, verify and wrap the break entry for `plan`. `f_globals`/`closure` are the
    original function's (the native instruction and the resume functions run with them);
    `wrap_resume` turns each resume function into what is called (e.g. kiln.compile)."""
    facts = facts_of(plan.code)
    _check_plan(plan)
    group = group_at(facts.flow, plan.offset)
    check_frame_point(facts, group.start)
    if super_reads(facts.flow.steps).intersection(step.offset for step in group.steps):
        raise CannotResume("graph break at a zero-argument super(): run natively outside its method's frame, "
                           "it would not find `self` in the first slot", hint="write super(Class, self)")
    builder = _EntryBuilder(plan, facts, group, f_globals, closure, wrap_resume or (lambda f: f))
    generated = builder.bytecode()
    code, _analysis = assemble(generated)
    function = types.FunctionType(code, f_globals, code.co_name, tuple(builder.hidden) or None)
    entry = BreakEntry(plan, group, code, function, tuple(builder.successors))
    log_generated(f"break entry {entry!r}\n{plan!r}", code)
    return entry


@dataclass(eq=False)
class _OverCells:
    """What a break entry calls with the running function's closure and the frame's cells to
    get the resume function over them (cells first), wrapped like the others. Without cells
    of its own the function is kept while the closure stays the same tuple."""
    resume: ResumeCode
    f_globals: dict
    wrap: Callable
    _last: tuple | None = None  # (closure, wrapped function) of the last call without cells

    def __call__(self, closure, *cells) -> Callable:
        closure = closure or ()
        if cells:
            return self.wrap(self.resume.make_function(self.f_globals, cells + closure))
        last = self._last
        if last is not None and last[0] is closure:
            return last[1]
        function = self.wrap(self.resume.make_function(self.f_globals, closure))
        self._last = (closure, function)
        return function

    def __repr__(self) -> str:
        return f"<{self.resume.code.co_qualname} over the running closure>"


_LITERALS = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))


def _literal(obj: Any) -> bool:
    if isinstance(obj, (tuple, frozenset)) and type(obj) in (tuple, frozenset):
        return all(_literal(item) for item in obj)
    return type(obj) in _LITERALS


def _marshals(obj: Any) -> bool:
    try:
        marshal.dumps(obj)
        return True
    except ValueError:
        return False


def _check_plan(plan: BreakPlan) -> None:
    if len(set(plan.params)) != len(plan.params) or any(p.startswith(_TEMP) for p in plan.params):
        raise BytecodeError(f"break entry parameters must be distinct and not start with {_TEMP}: {plan.params}")

    def check_value(value, where: str) -> None:
        if isinstance(value, (Null, WithExit)) or not isinstance(value, (GraphOutput, Constant, Local, Build, Call)):
            raise BytecodeError(f"{where}: {value!r} is not a value")
        if isinstance(value, Local) and value.name not in plan.params:
            raise BytecodeError(f"{where}: {value!r} is not a parameter")
        if isinstance(value, GraphOutput) and plan.graph is None:
            raise BytecodeError(f"{where}: {value!r} but the plan has no graph")
        for child in (value.items if isinstance(value, Build) else
                      (value.function, *value.args) if isinstance(value, Call) else ()):
            check_value(child, where)

    for value in plan.graph_inputs:
        check_value(value, "graph input")
    for value in plan.effects:
        check_value(value, "effect")
    for item in plan.stack:
        if isinstance(item, WithExit):
            check_value(item.context, "with context")
        elif not isinstance(item, Null):
            check_value(item, "stack item")
    for name, value in plan.locals:
        check_value(value, f"local {name}")
    if len(plan.cells) != len(plan.code.co_cellvars):
        raise BytecodeError(f"{plan.code.co_name} has cell variables {plan.code.co_cellvars}, "
                            f"the plan passes {len(plan.cells)} cells")
    for name, value in zip(plan.code.co_cellvars, plan.cells):
        check_value(value, f"cell {name}")
    if plan.closure is not None:
        check_value(plan.closure, "closure")


class _EntryBuilder:
    def __init__(self, plan: BreakPlan, facts: CodeFacts, group: Group, f_globals: dict,
                 closure: tuple | None, wrap_resume: Callable):
        self.plan, self.facts, self.group = plan, facts, group
        self.f_globals, self.closure, self.wrap_resume = f_globals, closure, wrap_resume
        self.temps: dict[Value, str] = {}
        self.hidden: list = []  # objects passed as defaults of hidden parameters
        self.successors: list[Successor] = []
        self.locals = dict(plan.locals)

    # -- values --
    def load(self, value: Value) -> list:
        if isinstance(value, Local):
            return emit.load_fast(value.name)
        if isinstance(value, Constant):
            return self.load_object(value.value)
        return emit.load_fast(self.temps[value])

    def load_object(self, obj: Any) -> list:
        """LOAD_CONST keeps identity only for objects `bytecode` cannot marshal (it merges
        constants that marshal equal: two equal lists would become one). Other mutable
        objects become hidden parameters with the object as their default value."""
        if _literal(obj) or not _marshals(obj):
            return emit.load_const(obj)
        for index, known in enumerate(self.hidden):
            if known is obj:
                return emit.load_fast(f"{_TEMP}c{index}")
        self.hidden.append(obj)
        return emit.load_fast(f"{_TEMP}c{len(self.hidden) - 1}")

    def compute(self, value: Value) -> list:
        """Code that pushes `value`, computing it (children inline or from temps)."""
        if value in self.temps or isinstance(value, (Local, Constant)):
            return self.load(value)
        if isinstance(value, GraphOutput):
            return emit.load_fast(_TEMP + "graph_out") + emit.subscript_const(value.index)
        if isinstance(value, Build):
            items = [instr for item in value.items for instr in self.compute(item)]
            return items + (emit.build_tuple if value.kind == "tuple" else emit.build_list)(len(value.items))
        return emit.call_function(self.compute(value.function), [self.compute(a) for a in value.args])

    def materialise(self, values) -> list:
        """Evaluate each distinct non-trivial value once (children first) into a temporary: a
        value used twice (on the stack and in a local, or inside another value) is then one
        object, as it was in the frame."""
        code = []
        for value in values:
            if isinstance(value, (Local, Constant)) or value in self.temps:
                continue
            children = value.items if isinstance(value, Build) else \
                (value.function, *value.args) if isinstance(value, Call) else ()
            code += self.materialise(children)
            code += self.compute(value)
            self.temps[value] = f"{_TEMP}v{len(self.temps)}"
            code += emit.store_fast(self.temps[value])
        return code

    # -- layout --
    def operand_split(self) -> tuple[int, dict[str, int]]:
        """(how many stack items the group leaves untouched, results per way out)."""
        depth = lowest = len(self.plan.stack)
        expected = self.facts.stack.states.get(self.group.start)
        if expected is None or expected.depth != depth:
            raise BytecodeError(f"{self.plan.code.co_name}: plan has {depth} stack items, the frame has "
                                f"{expected.depth if expected else 'no state'} at offset {self.group.start}")
        for step in self.group.steps[:-1]:
            pre, post = step.effect
            lowest = min(lowest, depth + pre)
            depth += pre + post
        last = self.group.last
        ways = {}  # how -> (where it continues, depth there)
        if self.group.next_offset is not None:
            ways["next"] = (self.group.next_offset, depth + sum(last.effect))
        if last.jump is not None:
            ways["jump"] = (last.jump, depth + sum(last.jump_effect))
        lowest = min(lowest, depth + last.effect[0], depth + (last.jump_effect or last.effect)[0])
        results = {}
        for how, (target, end_depth) in ways.items():
            state = self.facts.stack.states.get(target)
            if state is None or state.depth != end_depth:
                raise BytecodeError(f"{self.plan.code.co_name}: after offset {self.group.start} the "
                                    f"{how} path has depth {end_depth}, the original has "
                                    f"{state.depth if state else 'no state'} at {target}")
            results[how] = end_depth - lowest
        if lowest < 0:
            raise BytecodeError(f"{self.plan.code.co_name}: group {self.group!r} pops below the stack")
        return lowest, results

    def exception_handler(self, kept: int):
        """(with-block slots active around the instruction, enclosing try handler or None)."""
        flow = self.facts.flow
        if len({flow.covering.get(step.offset) for step in self.group.steps}) != 1:
            raise CannotResume(f"graph break across exception-table regions at offset {self.group.start}")
        blocks = active_blocks(flow, self.group.start)
        declared = [i for i, item in enumerate(self.plan.stack) if isinstance(item, WithExit)]
        if sorted(blocks.with_slots) != declared:
            raise BytecodeError(f"{self.plan.code.co_name}: stack has with-exits at {declared}, the "
                                f"code's active with blocks at offset {self.group.start} are {blocks!r}")
        if any(slot >= kept for slot in declared):
            raise CannotResume("graph break at an instruction that consumes a with-block's exit")
        if declared and any(step.opname in ("BEFORE_WITH", "BEFORE_ASYNC_WITH") for step in self.group.steps):
            # The new context would be entered inside the outer ones, which are then exited
            # and re-entered around it: the outer __enter__ would clobber the state it set.
            raise CannotResume("graph break entering a with block nested in another with block")
        if blocks.handler is not None and blocks.handler.lasti:
            raise CannotResume(f"graph break inside a handler region that needs lasti (offset {self.group.start})")
        return declared, blocks.handler

    # -- resume calls --
    def call_resume(self, how: str, offset: int, items: list, result_temps: list[str]) -> list:
        kinds = tuple(slot_kind(item) for item in items) + (SlotKind.VALUE,) * len(result_temps)
        resume = resume_code(self.plan.code, offset, kinds, self.locals)
        if resume.cell_names or (resume.code.co_freevars and self.plan.closure is not None):
            # a function over this call's cells and closure
            function = _OverCells(resume, self.f_globals, self.wrap_resume)
            closure = self.load(self.plan.closure) if self.plan.closure is not None else \
                self.load_object(tuple(self.closure or ()))
            load_function = emit.call_function(self.load_object(function),
                                               [closure] + [self.load(cell) for cell in self.plan.cells])
        else:
            function = self.wrap_resume(resume.make_function(self.f_globals, self.closure))
            load_function = self.load_object(function)
        self.successors.append(Successor(how, resume, function))
        args = [self.load(self.locals[name]) for name in resume.leading]  # zero-argument super()'s self
        for item in items:
            if isinstance(item, WithExit):
                args.append(self.load(item.context))
            elif not isinstance(item, Null):
                args.append(self.load(item))
        args += [emit.load_fast(temp) for temp in result_temps]
        args += [self.load(self.locals[name]) for name in resume.local_names]
        return emit.call_function(load_function, args) + emit.return_value()

    def exit_contexts(self, slots: list[int]) -> list:
        code = []
        for slot in reversed(slots):
            code += emit.load_fast(f"{_TEMP}exit{slot}") + emit.call_exit()
        return code

    # -- the whole entry --
    def bytecode(self) -> Bytecode:
        plan, group = self.plan, self.group
        kept, results = self.operand_split()
        with_slots, handler = self.exception_handler(kept)
        below, operands = list(plan.stack[:kept]), plan.stack[kept:]
        if any(isinstance(item, Null) for item in operands) and not group.consumes_nulls:
            raise CannotResume(f"graph break at {group.last.opname}, which moves a NULL stack slot")
        callable_slot = kept if emit.NULL_AFTER_CALLABLE else kept + 1
        if group.last.opname in ("CALL", "CALL_KW") and isinstance(plan.stack[callable_slot], Null):
            raise BytecodeError(f"{plan.code.co_name}: the callable slot of the CALL at {group.last.offset} is NULL "
                                f"(this version puts NULL {'after' if emit.NULL_AFTER_CALLABLE else 'before'} the callable)")

        code = emit.resume_start()
        if plan.graph is not None:
            code += emit.call_function(self.load_object(plan.graph), [self.compute(v) for v in plan.graph_inputs])
            code += emit.store_fast(_TEMP + "graph_out")
        for effect in plan.effects:
            code += self.compute(effect) + emit.pop_top()
        values = [item.context if isinstance(item, WithExit) else item
                  for item in plan.stack if not isinstance(item, Null)]
        code += self.materialise(values + [value for _, value in plan.locals] + list(plan.cells))
        for slot in with_slots:
            code += self.load(plan.stack[slot].context) + emit.enter_with() + emit.store_fast(f"{_TEMP}exit{slot}")

        protect = bool(with_slots) or handler is not None
        on_exception = Label()
        try_begin = TryBegin(on_exception, push_lasti=False, stack_depth=0)
        if protect:
            code.append(try_begin)
        for item in operands:
            code += emit.push_null() if isinstance(item, Null) else self.load(item)
        jump = Label()
        code += self.native(jump)
        if protect:
            code.append(TryEnd(try_begin))

        for how, target in (("next", group.next_offset), ("jump", group.jump_offset)):
            if how not in results:
                continue
            if how == "jump":
                code.append(jump)
            temps = [f"{_TEMP}{how}{i}" for i in range(results[how])]
            for temp in reversed(temps):
                code += emit.store_fast(temp)
            code += self.exit_contexts(with_slots)
            code += self.call_resume(how, target, below, temps)
        if protect:
            code.append(on_exception)
            code += emit.store_fast(_TEMP + "exc") + self.exit_contexts(with_slots)
            if handler is not None:
                # (items the instruction only peeked at are still the plan's values)
                code += self.call_resume("exception", handler.target, list(plan.stack[:handler.depth]),
                                         [_TEMP + "exc"])
            else:
                code += emit.load_fast(_TEMP + "exc") + emit.reraise()
        emit.at_line(code, group.last.lineno)
        return self.assemble_attributes(code)

    def native(self, jump: Label) -> list:
        """The group's instructions, copied from the original; a conditional jump is re-emitted
        forward to `jump` (3.13 gets its TO_BOOL from emit.pop_jump_if)."""
        original = Bytecode.from_code(self.plan.code)
        positions = instruction_positions(original, self.facts.flow)
        code = []
        steps = self.group.steps
        if self.group.test is not None:
            steps = [s for s in steps[:-1] if s.opname != "TO_BOOL"]
        for step in steps:
            instr = original[positions[step.offset]]
            if step.opname in OR_POP_JUMPS:
                code.append(Instr(instr.name, jump, location=instr.location))
            else:
                code.append(instr.copy())
        if self.group.test is not None:
            code += emit.at_line(emit.pop_jump_if(self.group.test, jump), self.group.last.lineno)
        return code

    def assemble_attributes(self, code: list) -> Bytecode:
        original = self.plan.code
        generated = Bytecode(code)
        generated.name = original.co_name
        generated.qualname = f"{original.co_qualname}.break_at_{self.plan.offset}"
        generated.filename = original.co_filename
        generated.first_lineno = original.co_firstlineno
        generated.argnames = list(self.plan.params) + [f"{_TEMP}c{i}" for i in range(len(self.hidden))]
        generated.argcount = len(generated.argnames)
        generated.flags = CompilerFlags.OPTIMIZED | CompilerFlags.NEWLOCALS
        return generated
