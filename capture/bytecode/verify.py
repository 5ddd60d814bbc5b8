"""Stack-depth analysis and verification of code objects, on the real instructions (dis).

Every generated code object is analysed (assemble.py) before it is wrapped in a function: each
reachable instruction is reached with one stack depth, nothing reads below the stack (exact pop
counts: stack_effects.py), every jump and handler target is an instruction, exception-table
depths fit the stack, nothing falls off the end, and co_stacksize covers the deepest point.
CPython itself checks none of this and may crash.
"""
from __future__ import annotations

import types
from dataclasses import dataclass

from .errors import BytecodeError
from .flow import Flow

_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # GENERATOR, COROUTINE, ITERABLE_COROUTINE, ASYNC_GENERATOR


@dataclass(frozen=True)
class FrameState:
    """What the analysis knows before an instruction runs: the value-stack depth, and the stack
    positions holding interpreter-internal values: an exception saved by PUSH_EXC_INFO, or a
    `lasti` pushed by unwinding. These exist only inside handlers and cleanup code; a frame
    cannot be rebuilt there (a lasti is an offset into the original code)."""
    depth: int
    internal: tuple[int, ...] = ()

    @property
    def in_handler(self) -> bool:
        return bool(self.internal)


@dataclass(frozen=True)
class StackAnalysis:
    states: dict[int, FrameState]      # reachable offsets only
    max_depth: int
    flow: Flow

    def depth_at(self, offset: int) -> int:
        if offset not in self.states:
            raise BytecodeError(f"{self.flow.code.co_name}: offset {offset} is unreachable")
        return self.states[offset].depth


def is_generator(code: types.CodeType) -> bool:
    return bool(code.co_flags & _GENERATOR_FLAGS)


def analyse(code: types.CodeType, flow: Flow | None = None) -> StackAnalysis:
    """Walk every path from offset 0; raise BytecodeError at the first inconsistency."""
    if is_generator(code):
        raise BytecodeError(f"{code.co_name}: stack analysis of generators is not supported")
    flow = flow or Flow(code)
    name = code.co_name
    states: dict[int, FrameState] = {}
    max_depth = 0
    work: list[tuple[int, FrameState]] = []

    def reach(offset: int | None, state: FrameState, origin: int) -> None:
        if offset is None:
            raise BytecodeError(f"{name}: execution falls off the end after offset {origin}")
        if offset not in flow.index_of:
            raise BytecodeError(f"{name}: offset {origin} goes to {offset}, which is not an instruction")
        if state.depth < 0:
            raise BytecodeError(f"{name}: negative stack depth reaching {offset} from {origin}")
        known = states.get(offset)
        if known is None:
            states[offset] = state
            work.append((offset, state))
            return
        if known.depth != state.depth:
            raise BytecodeError(f"{name}: offset {offset} reached with stack depth {known.depth} "
                                f"and {state.depth} (from {origin})")
        merged = tuple(sorted(set(known.internal) | set(state.internal)))
        if merged != known.internal:  # possibly internal on some path: keep the union
            states[offset] = FrameState(known.depth, merged)
            work.append((offset, states[offset]))

    reach(0, FrameState(0), 0)
    while work:
        offset, state = work.pop()
        if states[offset] != state:
            continue  # superseded by a wider merge
        step = flow.step_at(offset)
        depth = state.depth
        entry = flow.covering.get(offset)
        if entry is not None and step.opname != "PUSH_EXC_INFO":  # the one instruction that cannot raise
            if depth < entry.depth:
                raise BytecodeError(f"{name}: offset {offset} has stack depth {depth} below its "
                                    f"exception handler's depth {entry.depth}")
            kept = tuple(p for p in state.internal if p < entry.depth) + ((entry.depth,) if entry.lasti else ())
            handler_state = FrameState(entry.depth + entry.lasti + 1, kept)
            max_depth = max(max_depth, handler_state.depth)
            reach(entry.target, handler_state, offset)
        edges = [(step.jump, step.jump_effect)] if step.jump is not None else []
        edges.append((step.next_offset if step.falls_through else None, step.effect))
        for target, (pre, post) in edges:
            if depth + pre < 0:
                raise BytecodeError(f"{name}: {step.opname} at offset {offset} needs {-pre} stack "
                                    f"items, has {depth}")
            after = depth + pre + post
            max_depth = max(max_depth, depth, after)
            if target is not None or step.falls_through:
                reach(target, FrameState(after, _internal_after(step, state, pre, post)), offset)
    return StackAnalysis(states, max_depth, flow)


def _internal_after(step, state: FrameState, pre: int, post: int) -> tuple[int, ...]:
    """Track interpreter-internal slots through one instruction (COPY and SWAP move them).
    A marked slot stays marked while the stack is at least that deep: many instructions only
    peek at the slots they "pop" (WITH_EXCEPT_START), and over-marking only refuses resumes."""
    internal, depth = set(state.internal), state.depth
    if step.opname == "COPY":
        if depth - step.arg in internal:
            internal.add(depth)
    elif step.opname == "SWAP":
        top, other = depth - 1, depth - step.arg
        internal = {other if p == top else top if p == other else p for p in internal}
    else:
        internal = {p for p in internal if p < depth + pre + post}
        if step.opname == "PUSH_EXC_INFO":
            internal.add(depth - 1)  # the previously handled exception, under the new one
    return tuple(sorted(internal))


def verify(code: types.CodeType) -> StackAnalysis:
    """analyse(code) and check co_stacksize covers the deepest point."""
    analysis = analyse(code)
    if analysis.max_depth > code.co_stacksize:
        raise BytecodeError(f"{code.co_name}: needs stack depth {analysis.max_depth}, "
                            f"co_stacksize is {code.co_stacksize}")
    return analysis
