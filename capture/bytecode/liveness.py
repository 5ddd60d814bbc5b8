"""Which locals a code object may still read from a given offset on (backward dataflow over
the dis-level flow, exception edges included). Resume functions take only these as arguments.

Reads: LOAD_FAST* (and the 3.13 pairs), DELETE_FAST (it raises on an unbound local).
Writes: STORE_FAST*. Code that reads locals by name (`locals()`, `exec`) is not seen, except
zero-argument super(), which reads the first argument from the frame's first slot: 3.11's
super() call, and 3.12+'s LOAD_SUPER_ATTR (its generic path calls super() with no arguments
even though `self` is on the stack) read that argument.
"""
from __future__ import annotations

import types

from .flow import Flow, Step

_READS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "DELETE_FAST"})


def super_reads(steps: list[Step]) -> frozenset[int]:
    """Offsets of the instructions that run zero-argument super(), which reads the frame's first
    slot: 3.12+'s LOAD_SUPER_ATTR without its two-argument bit (oparg & 2), and the CALL of a
    bare `super()` (every 3.11 super(); on 3.12+ one not followed by an attribute)."""
    reads = set()
    for index, step in enumerate(steps):
        if step.opname == "LOAD_SUPER_ATTR" and not step.arg & 2:
            reads.add(step.offset)
            continue
        following = steps[index + 1] if index + 1 < len(steps) else None
        if step.opname != "LOAD_GLOBAL" or step.argval != "super" or (
                following is not None and following.opname == "LOAD_DEREF" and following.argval == "__class__"):
            continue
        call = next((later for later in steps[index + 1:] if later.opname == "CALL"), None)
        if call is not None:
            reads.add(call.offset)
    return frozenset(reads)


def super_argument(code: types.CodeType, flow: Flow | None = None) -> tuple[str, ...]:
    """(the first argument's name,) when `code` is a method that runs zero-argument super(),
    which reads that argument from the frame's first slot; else ()."""
    if "__class__" not in code.co_freevars or "super" not in code.co_names or not code.co_argcount:
        return ()
    return code.co_varnames[:1] if super_reads((flow or Flow(code)).steps) else ()


def _transfer(step: Step, live_after: frozenset[str]) -> frozenset[str]:
    """live before `step` given live after it."""
    opname, name = step.opname, step.argval
    if opname in _READS:
        return live_after | {name}
    if opname == "STORE_FAST":
        return live_after - {name}
    if opname == "LOAD_FAST_LOAD_FAST":
        return live_after | set(name)
    if opname == "STORE_FAST_STORE_FAST":
        return live_after - set(name)
    if opname == "STORE_FAST_LOAD_FAST":  # store the first, then load the second
        stored, loaded = name
        return (live_after | {loaded}) - {stored}
    return live_after


class Liveness:
    """live-before sets for every instruction of one code object."""

    def __init__(self, code: types.CodeType, flow: Flow | None = None):
        self.flow = flow or Flow(code)
        steps = self.flow.steps
        successors: list[list[int]] = []
        predecessors: list[list[int]] = [[] for _ in steps]
        for index, step in enumerate(steps):
            targets = []
            if step.falls_through and step.next_offset is not None:
                targets.append(step.next_offset)
            if step.jump is not None:
                targets.append(step.jump)
            entry = self.flow.covering.get(step.offset)
            if entry is not None:
                targets.append(entry.target)
            indices = [self.flow.index_of[target] for target in targets if target in self.flow.index_of]
            successors.append(indices)
            for successor in indices:
                predecessors[successor].append(index)
        super_self, super_calls = set(super_argument(code, self.flow)), super_reads(steps)
        live_before: list[frozenset[str]] = [frozenset()] * len(steps)
        work = list(range(len(steps)))
        queued = set(work)
        while work:
            index = work.pop()
            queued.discard(index)
            after = frozenset().union(*(live_before[s] for s in successors[index]))
            before = _transfer(steps[index], after)
            if steps[index].offset in super_calls:
                before |= super_self
            if before != live_before[index]:
                live_before[index] = before
                for predecessor in predecessors[index]:
                    if predecessor not in queued:
                        queued.add(predecessor)
                        work.append(predecessor)
        self._live_before = live_before

    def live_at(self, offset: int) -> frozenset[str]:
        """Locals that may be read at or after `offset` before being overwritten."""
        return self._live_before[self.flow.index_of[offset]]
