"""Graph breaks: compile a frame around an instruction capture cannot trace.

When tracing the top-level frame raises `Unsupported` (and fullgraph=False), the top-level
translator has noted the instruction count at which its current instruction began. The frame
is traced again from scratch and stopped right before that instruction (`BreakHere`), so the
state is clean: nothing of the failed instruction has run. Then:

1. the graph so far is closed with a tuple output: every live value the frame needs after the
   break (the stack, the live locals, active `with` contexts), rebuilt by the usual
   `OutputPlan`s around the graph's results; side effects recorded so far are replayed by the
   same `EffectsPlan` the cache entry uses, before the unsupported code runs;
2. `bytecode/break_entry.py` generates the break entry from a `BreakPlan`: call that rebuild
   (graph + replay), lay out the stack and locals, re-enter `with` blocks, run the one
   instruction natively, and call the resume function(s), each wrapped in `kiln.compile`
   with the same options: compiled lazily on its first call, with its own guards and cache.

Breaks inside an inlined call break at the caller's call site: the callable on the stack is
replaced by a *call trampoline* that compiles the callee as its own frame (which may break
again, in the same way). Values the plans below cannot rebuild (started generators) make the
whole frame run eagerly, as do `CannotResume` cases.

Cells: a frame with cell variables passes its cells to the resume function as its closure
(bytecode/resume.py). Each cell the frame made (MAKE_CELL, or an inlined callee's cell a
function made there still holds) is made again once per call of the break entry (`MakeCell`,
filled with its traced contents), and every function made in the frame that closes over it
is made again over that same cell object (`MakeFunction`), so writes through either side are
seen by both, as in eager Python. Cells that exist natively (the compiled function's own
closure, a resume function's cells from an earlier piece) are passed on as they are.
"""
from __future__ import annotations

import functools
import linecache
import types
from dataclasses import dataclass
from typing import Any, Callable

import torch

from kiln.logs import get_logger

from . import cache
from .bytecode import emit
from .bytecode.break_entry import BreakEntry, BreakPlan, build_break_entry
from .bytecode.layout import GraphOutput, Local, Null, WithExit
from .bytecode.groups import group_at
from .bytecode.resume import check_frame_point, facts_of
from .exc import DEFAULT_HINT, Unsupported
from .inline import InliningTranslator
from .interpreter import PUSHED_NULL, BreakHere, InstructionTranslator, _LazyLocal
from .output_graph import OutputGraph
from .plans import FromSource, OutputPlan, Rebuild, WithAliases, alias_memo
from .sources import Frame, LocalSource
from .variables import NullVariable, TupleVariable, VariableTracker
from .variables.containers import IteratorVariable, ListIteratorVariable
from .variables.functions import UserFunctionVariable
from .variables.autocast import AutocastContextVariable
from .variables.grad_mode import GradModeContextVariable, WithExitVariable
from .variables.iterators import GeneratorVariable
from .variables.nested import CellVariable, NestedFunctionVariable
from .variables.nn_module import BoundMethodVariable, NNModuleVariable
from .variables.tensor import TensorMethodVariable

graph_breaks_log = get_logger("graph_breaks")


@dataclass(frozen=True)
class GraphBreak:
    """One graph break, as `kiln.explain` and `kiln explain` list it."""
    function: str        # qualified name of the frame that broke
    location: str        # file:line of the instruction run natively
    reason: str          # what was unsupported, and where (may be inside a callee)
    hint: str

    def __str__(self) -> str:
        return f"{self.function} at {self.location}: {self.reason}\n    hint: {self.hint}"


BREAKS: list[GraphBreak] = []

# Short hints for common breaks (first matching phrase of the reason wins).
BREAK_HINTS = {
    "branching on a tensor's value": "torch.where(cond, a, b) keeps both branches in one graph",
    "item()": "keep the value as a 0-d tensor (drop .item()) to stay in one graph",
    "tolist()": "keep the values in a tensor to stay in one graph",
    "numpy()": "use torch ops instead of numpy to stay in one graph",
    "print()": "print outside the compiled function (or accept the break)",
    "kiln.disable": "the function is marked kiln.disable: it always runs eagerly, between graphs",
}
DEFAULT_BREAK_HINT = "the graph breaks here; fullgraph=True would make this an error"


def break_hint(error: Unsupported) -> str:
    for phrase, hint in BREAK_HINTS.items():
        if phrase in error.reason:
            return hint
    return error.hint if error.hint != DEFAULT_HINT else DEFAULT_BREAK_HINT


# -- rebuilding values the frame needs after the break ---------------------------------------

@dataclass(frozen=True)
class GetAttr(OutputPlan):
    owner: OutputPlan
    name: str

    def build(self, graph_outputs, frame):
        return getattr(self.owner.build(graph_outputs, frame), self.name)

    def __repr__(self) -> str:
        return f"{self.owner!r}.{self.name}"


@dataclass(frozen=True)
class BindMethod(OutputPlan):
    function: OutputPlan
    obj: OutputPlan

    def build(self, graph_outputs, frame):
        return types.MethodType(self.function.build(graph_outputs, frame), self.obj.build(graph_outputs, frame))


@dataclass(frozen=True)
class IterFrom(OutputPlan):
    """iter(items) advanced by `skip`: a list iterator stays live on its list, as CPython's."""
    items: OutputPlan
    skip: int = 0

    def build(self, graph_outputs, frame):
        iterator = iter(self.items.build(graph_outputs, frame))
        for _ in range(self.skip):
            next(iterator)
        return iterator


@dataclass(frozen=True)
class GradContext(OutputPlan):
    """A fresh grad-mode context object equal to the traced one."""
    mode: bool
    set_on_construction: bool
    prev: bool | None

    def build(self, graph_outputs, frame):
        if not self.set_on_construction:
            return torch.enable_grad() if self.mode else torch.no_grad()
        context = object.__new__(torch.set_grad_enabled)  # (its constructor would switch the mode now)
        context.mode, context.prev = self.mode, self.prev
        return context


@dataclass(frozen=True)
class StartGenerator(OutputPlan):
    """A generator the frame made but has not started: made again from its code."""
    code: types.CodeType
    f_globals: dict
    closure: tuple[OutputPlan, ...]  # its cells
    args: tuple[OutputPlan, ...]

    def build(self, graph_outputs, frame):
        closure = tuple(cell.build(graph_outputs, frame) for cell in self.closure)
        function = types.FunctionType(self.code, self.f_globals, self.code.co_name, None, closure or None)
        return function(*(arg.build(graph_outputs, frame) for arg in self.args))


@dataclass(frozen=True)
class Trampoline(OutputPlan):
    """The callable of a call that broke inside the callee: the callee compiled as its own frame."""
    target: OutputPlan
    compile_function: Callable

    def build(self, graph_outputs, frame):
        return trampoline(self.target.build(graph_outputs, frame), self.compile_function)


class _Trampolined(VariableTracker):
    """Marks the callable of the call a break stops at, for the Trampoline plan."""

    def __init__(self, inner: VariableTracker, compile_function: Callable):
        super().__init__(None)
        self.inner, self.compile_function = inner, compile_function


@dataclass(frozen=True, eq=False)
class MakeCell(OutputPlan):
    """A cell the frame made: a new cell per call of the break entry, one object however many
    plans reach it (the frame's cell variable, the closures of the functions made over it).
    `contents` is a one-item list, filled after planning (a cell may hold a function over itself)."""
    slot: int
    contents: list

    def build(self, graph_outputs, frame):
        memo = alias_memo()
        key = ("cell", self.slot)
        cell = memo.get(key)
        if cell is None:
            cell = memo[key] = types.CellType()  # (in the memo before its contents: cycles end here)
            if self.contents[0] is not None:
                cell.cell_contents = self.contents[0].build(graph_outputs, frame)
        return cell

    def __repr__(self) -> str:
        return f"cell{self.slot}"


class _CellPlanner:
    """Plans the cells of one graph break, each CellVariable once."""

    def __init__(self, lazy_names: dict[int, str]):
        self.specs: dict[int, MakeCell] = {}
        self.kept: list = []  # (the CellVariables, so their ids stay unique while planning)
        self.lazy_names = lazy_names  # id(cell) -> the argument whose unread value it holds

    def plan(self, cell: CellVariable, plan_item) -> OutputPlan:
        if cell.real_cell is not None:  # exists natively: pass the same cell on (read through its source)
            if cell.source is None:
                raise Unsupported("carrying a closure cell with no source across a graph break")
            return FromSource(cell.cell_source())
        spec = self.specs.get(id(cell))
        if spec is None:
            spec = self.specs[id(cell)] = MakeCell(len(self.specs), [None])
            self.kept.append(cell)
            contents = cell.contents
            if isinstance(contents, _LazyLocal):  # an argument made a cell, not read yet: the same object
                if id(cell) not in self.lazy_names:
                    raise Unsupported(f"carrying {cell!r} across a graph break")
                spec.contents[0] = FromSource(LocalSource(self.lazy_names[id(cell)]))
            elif contents is not CellVariable.EMPTY:
                spec.contents[0] = plan_item(contents)
        return spec


class _CellSlot(VariableTracker):
    """One of the frame's cell variables, as the break passes it: the cell, not its contents."""

    def __init__(self, cell: CellVariable):
        super().__init__(None)
        self.cell = cell


_MADE: dict[types.CodeType, types.FunctionType] = {}


@dataclass(frozen=True)
class MakeFunction(OutputPlan):
    """A function (lambda, nested def) the frame made: made again, over the same cells as the
    other values the break carries (MakeCell)."""
    code: types.CodeType
    f_globals: dict
    defaults: OutputPlan | None
    kwdefaults: OutputPlan | None
    closure: tuple[OutputPlan, ...] = ()

    def build(self, graph_outputs, frame):
        if self.defaults is None and self.kwdefaults is None and not self.closure:
            # One function object for every call, so the resume function's identity guard holds.
            if self.code not in _MADE:
                _MADE[self.code] = types.FunctionType(self.code, self.f_globals, self.code.co_name)
            return _MADE[self.code]
        defaults = None if self.defaults is None else self.defaults.build(graph_outputs, frame)
        closure = tuple(cell.build(graph_outputs, frame) for cell in self.closure) or None
        function = types.FunctionType(self.code, self.f_globals, self.code.co_name, defaults, closure)
        if self.kwdefaults is not None:
            function.__kwdefaults__ = self.kwdefaults.build(graph_outputs, frame)
        return function


def _function_plan(value: NestedFunctionVariable, plan_item, cells: _CellPlanner):
    closure = tuple(cells.plan(cell, plan_item) for cell in value.closure)
    return MakeFunction(value.code, value.f_globals, value.defaults and plan_item(value.defaults),
                        value.kwdefaults and plan_item(value.kwdefaults), closure)


def _generator_plan(value: GeneratorVariable, plan_item, cells: _CellPlanner):
    tx = value.translator
    code = tx.code
    if tx.ip != 0 or value.finished or code.co_flags & 0x0C or code.co_kwonlyargcount:
        raise Unsupported(f"carrying {value!r} across a graph break (already started, or *args/**kwargs)")
    names = code.co_varnames[:code.co_argcount]
    args = tuple(plan_item(tx.resolve_local(name, tx.locals[name])) for name in names)
    closure = tuple(cells.plan(cell if isinstance(cell, CellVariable) else
                               CellVariable(real_cell=cell, source=tx.closure_source(name, index)), plan_item)
                    for index, (name, cell) in enumerate(zip(code.co_freevars, tx.closure)))
    return StartGenerator(code, tx.f_globals, closure, args)


# Variable kinds a break carries to the resume function but a return value never has.
REBUILDERS: dict[type, Callable] = {
    TensorMethodVariable: lambda value, plan_item: GetAttr(plan_item(value.tensor), value.name),
    BoundMethodVariable: lambda value, plan_item: BindMethod(plan_item(value.function), plan_item(value.obj)),
    IteratorVariable: lambda value, plan_item: IterFrom(Rebuild(tuple, tuple(map(plan_item, value.items)))),
    ListIteratorVariable: lambda value, plan_item: IterFrom(plan_item(value.lst), value.index),
    GradModeContextVariable: lambda value, plan_item: GradContext(value.mode, value.set_on_construction, value.prev),
}


def _held_by_function(value: NestedFunctionVariable) -> list:
    return [item for item in (value.defaults, value.kwdefaults, *value.closure) if isinstance(item, VariableTracker)]


# What a value a break carries holds: containers reached through these and elsewhere too are
# rebuilt once, shared (a list in a local and in a cell stays one list).
HELD_VALUES: dict[type, Callable] = {
    _CellSlot: lambda value: [value.cell],
    CellVariable: lambda value: [value.contents] if isinstance(value.contents, VariableTracker) else [],
    NestedFunctionVariable: _held_by_function,
}


def _rebuilders(cells: _CellPlanner) -> dict[type, Callable]:
    """REBUILDERS, with the kinds that hold cells planned by this break's `cells`."""
    return {**REBUILDERS,
            GeneratorVariable: functools.partial(_generator_plan, cells=cells),
            NestedFunctionVariable: functools.partial(_function_plan, cells=cells),
            _CellSlot: lambda value, plan_item: cells.plan(value.cell, plan_item)}


# -- call trampolines --------------------------------------------------------------------------

_COMPILED: dict[tuple[Any, Callable], Callable] = {}  # (function, compile_function) -> compiled


def _hooked(module: torch.nn.Module) -> bool:
    from torch.nn.modules import module as module_globals
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks)


def trampoline(target: Any, compile_function: Callable) -> Any:
    """What the break entry calls instead of `target`: Python functions, methods and modules
    compiled as their own frames; anything else (builtins, C functions, disabled ones) as is."""
    def compiled(function):
        if function.__closure__:  # a closure may be new on every call (its code's cache is shared): not kept
            return compile_function(function)
        key = (function, compile_function)  # (holding compile_function keeps it, and its options, apart)
        if key not in _COMPILED:
            _COMPILED[key] = compile_function(function)
        return _COMPILED[key]

    if isinstance(target, types.FunctionType) and not target.__dict__.get("_kiln_disable"):
        return compiled(target)
    if isinstance(target, types.MethodType) and isinstance(target.__func__, types.FunctionType):
        return types.MethodType(compiled(target.__func__), target.__self__)
    if isinstance(target, torch.nn.Module) and not _hooked(target):
        forward = type(target).forward
        if isinstance(forward, types.FunctionType):
            return functools.partial(compiled(forward), target)
    return target


REBUILDERS[_Trampolined] = lambda value, plan_item: Trampoline(plan_item(value.inner), value.compile_function)


# -- the break ---------------------------------------------------------------------------------

@dataclass
class BreakCacheEntry:
    """A cache entry whose code runs up to a graph break and continues in a resume function."""
    guards: Any
    prefix: cache.CacheEntry       # graph + replay, returning the values the break entry lays out
    entry: BreakEntry
    params: tuple[str, ...]
    graph_break: GraphBreak

    def run(self, frame: Frame) -> Any:
        # (the closure is the running function's: closures of one code share this entry)
        return self.entry.function(*[frame.L[name] for name in self.params], frame.C)


def _real_order(stack: list) -> list:
    """3.13 keeps a load's NULL above its callable; the tracer pushes it below (as 3.11)."""
    stack = list(stack)
    if emit.NULL_AFTER_CALLABLE:
        index = 0
        while index < len(stack) - 1:
            if isinstance(stack[index], NullVariable) and stack[index] is not PUSHED_NULL \
                    and not isinstance(stack[index + 1], NullVariable):
                stack[index], stack[index + 1] = stack[index + 1], stack[index]
                index += 1
            index += 1
    return stack


def _callable_slot(stack: list, instruction) -> int | None:
    """Index of the callable of the CALL (or CALL_FUNCTION_EX) about to run (symbolic order: NULL below it)."""
    if instruction.opname == "CALL_FUNCTION_EX":  # [NULL, callable, args tuple, kwargs dict if flag 1]
        first = len(stack) - 3 - (instruction.arg & 1)  # (3.13's PUSH_NULL after the callable: swapped)
        if first < 0:
            return None
        if isinstance(stack[first], NullVariable):
            return first + 1
        return first if isinstance(stack[first + 1], NullVariable) else None
    if instruction.opname != "CALL":
        return None
    first = len(stack) - instruction.arg - 2
    if first < 0:
        return None
    if isinstance(stack[first], NullVariable):
        return first + 1
    if isinstance(stack[first + 1], NullVariable):
        return first
    return None


def _layout(tracer: InstructionTranslator, instruction, params: tuple[str, ...], compile_function):
    """(stack items, locals, values): the values tuple is what the graph prefix returns; the
    stack and locals refer to it by GraphOutput index, to parameters by Local."""
    values: list = []

    def slot(variable) -> GraphOutput:
        values.append(variable)
        return GraphOutput(len(values) - 1)

    symbolic = list(tracer.stack)
    callee = _callable_slot(symbolic, instruction)
    if callee is not None and isinstance(symbolic[callee], (UserFunctionVariable, BoundMethodVariable,
                                                             NNModuleVariable, NestedFunctionVariable)):
        symbolic[callee] = _Trampolined(symbolic[callee], compile_function)
    stack = []
    for variable in _real_order(symbolic):
        if isinstance(variable, NullVariable):
            stack.append(Null())
        elif isinstance(variable, WithExitVariable):
            stack.append(WithExit(slot(variable.context)))
        else:
            stack.append(slot(variable))
    live = facts_of(tracer.code).liveness.live_at(instruction.offset)
    local_items = []
    for name in tracer.code.co_varnames:
        if name not in live or name not in tracer.locals or name in tracer.code.co_cellvars:
            continue
        value = tracer.locals[name]
        if isinstance(value, _LazyLocal) and name in params:
            local_items.append((name, Local(name)))
        else:
            local_items.append((name, slot(tracer.resolve_local(name, value))))
    cells = []
    for name in tracer.code.co_cellvars:  # MAKE_CELL ran before RESUME: each is a CellVariable
        cell = tracer.locals.get(name)
        if not isinstance(cell, CellVariable):
            raise Unsupported(f"the cell of {name!r} at a graph break")
        cells.append(slot(_CellSlot(cell)))
    return tuple(stack), tuple(local_items), tuple(cells), values


CLOSURE_PARAM = ".closure"  # the break entry's last parameter (no Python name can clash with it)

LOOP_NOTE = " (inside a loop: the rest of the frame runs eagerly)"


_ENDS_FLOW = frozenset({"RETURN_VALUE", "RERAISE", "RAISE_VARARGS", "JUMP_FORWARD", "JUMP_BACKWARD",
                        "JUMP_BACKWARD_NO_INTERRUPT", "JUMP"})


def _inside_loop(decoded, offset: int) -> bool:
    """Normal control flow from `offset` reaches a jump back to or before it. (Exception
    edges are not followed: 3.12+ `with` handlers jump back to the code after the block.)"""
    seen, work = set(), [decoded.index_of_offset[offset]]
    while work:
        index = work.pop()
        if index in seen or index >= len(decoded.instructions):
            continue
        seen.add(index)
        inst = decoded.instructions[index]
        if inst.jump_target is not None:
            if inst.jump_target <= offset:
                return True
            work.append(decoded.index_of_offset[inst.jump_target])
        if inst.opname not in _ENDS_FLOW:
            work.append(index + 1)
    return False


def compile_break(fn: Callable, frame: Frame, error: Unsupported, backend: Callable,
                  compile_function: Callable, policy=None) -> BreakCacheEntry:
    """Trace `fn` again up to where `error` happened and build the break there. Raises
    Unsupported (or CannotResume) when the frame cannot break there."""
    code = fn.__code__
    if error.break_count is None:
        raise Unsupported(f"{error.reason} (not at an instruction of {code.co_name})")
    output = OutputGraph(code.co_name, policy)
    output.break_at = error.break_count
    tracer = InliningTranslator(code, frame, output)
    params = tuple(frame.L)
    try:
        try:
            with output.held_fake_mode():
                tracer.run()
        except BreakHere:
            pass
        else:
            raise RuntimeError(f"re-tracing {code.co_qualname} did not stop at the graph break")
        instruction = tracer.current
        facts = facts_of(code)  # (CannotResume here, before anything is compiled)
        check_frame_point(facts, group_at(facts.flow, instruction.offset).start)
        if instruction.opname == "BEFORE_WITH":  # the block could not be re-entered by resume functions
            raise Unsupported("a `with` block on a context manager capture does not trace")
        if any(isinstance(block.context, AutocastContextVariable) for block in tracer.block_stack):
            raise Unsupported("a graph break inside a `with torch.autocast(...)` block")
        stack, local_items, cells, values = _layout(tracer, instruction, params, compile_function)
        lazy_names = {id(tracer.locals.get(name)): name for name in code.co_cellvars}
        cell_planner = _CellPlanner(lazy_names)
        output.rebuilders = _rebuilders(cell_planner)
        output.held_values = HELD_VALUES
        if tracer.block_stack:  # the break entry re-enters the with blocks: leave them here
            output.set_grad_mode(tracer.block_stack[0].context.prev)
        try:
            graph_module, plan = output.finish(TupleVariable(values))
        except Unsupported as error_carrying:
            reason = error_carrying.reason
            if reason.startswith("returning "):
                reason = f"carrying {reason.removeprefix('returning ')} across the graph break"
            raise Unsupported(reason, hint=error_carrying.hint) from None
        if cell_planner.specs and output.effects_plan is None and not isinstance(plan, WithAliases):
            plan = WithAliases(plan)  # (MakeCell's memo: EffectsPlan.run opens one itself)
    finally:
        torch._C._set_grad_enabled(output.initial_grad_mode)
    with output.backend_context():
        compiled = None if graph_module is None else backend(graph_module, list(output.example_inputs))
    output.guards.extend(output.shape_guards())  # after the backend, which may have added some
    output.guards.compile()
    prefix = cache.CacheEntry(output.guards, compiled, output.input_sources, plan, graph_module, output.effects_plan)
    f_globals, builtins_ = frame.G, frame.B

    def graph_then_replay(*args):  # the break entry's "graph": run it, replay effects, build values
        *values, closure = args
        return prefix.run(Frame(dict(zip(params, values)), f_globals, builtins_, closure))

    graph_then_replay.__qualname__ = f"graph_before_{code.co_name}_break"
    entry_params = params + (CLOSURE_PARAM,)
    break_plan = BreakPlan(code, instruction.offset, entry_params, stack, local_items, graph=graph_then_replay,
                           graph_inputs=tuple(Local(name) for name in entry_params), cells=cells,
                           closure=Local(CLOSURE_PARAM))
    in_loop = _inside_loop(tracer.decoded, instruction.offset)
    # In a loop, each iteration would break again into one more resume function: the rest of
    # the frame runs uncompiled instead (as TorchDynamo skips such frames).
    def wrap_resume(function):
        # Resuming in an `except` handler (the native instruction raised): capture does not trace
        # handlers, so that path runs uncompiled, as does everything after a break in a loop.
        offset = int(function.__code__.co_name.rsplit("_", 1)[1])
        handler = tracer.instructions[tracer.decoded.index_of_offset[offset]].opname == "PUSH_EXC_INFO"
        return function if in_loop or handler else compile_function(function)

    entry = build_break_entry(break_plan, fn.__globals__, fn.__closure__, wrap_resume=wrap_resume)
    lineno = instruction.lineno or code.co_firstlineno
    graph_break = GraphBreak(code.co_qualname, f"{code.co_filename}:{lineno}",
                             f"{error.reason} at {error.location}" + (LOOP_NOTE if in_loop else ""), break_hint(error))
    graph_breaks_log.debug("graph break in %s at %s: %s\n  %s\n%r", code.co_qualname, graph_break.location,
                           graph_break.reason, linecache.getline(code.co_filename, lineno).strip(), break_plan)
    if graph_module is not None:
        graph_breaks_log.debug("graph before the break:\n%s", graph_module.print_readable(print_output=False))
    BREAKS.append(graph_break)
    return BreakCacheEntry(output.guards, prefix, entry, params, graph_break)


def clear() -> None:
    BREAKS.clear()
    _COMPILED.clear()
    _MADE.clear()

