"""Which `with` blocks and which `try` handler are active at an offset, read from the exception
table: the innermost entry covering the offset; while it is a `with` cleanup (PUSH_EXC_INFO;
WITH_EXCEPT_START), its __exit__ sits at stack slot depth-1, and the next enclosing handler
is the one covering that cleanup's own cleanup code."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import BytecodeError
from .flow import ExceptionEntry, Flow


@dataclass(frozen=True)
class ActiveBlocks:
    with_slots: tuple[int, ...]          # stack slots holding an active with-block's __exit__, innermost first
    handler: ExceptionEntry | None       # the enclosing try handler beyond them, if any

    def __repr__(self) -> str:
        return f"ActiveBlocks(with_slots={list(self.with_slots)}, handler={self.handler!r})"


def active_blocks(flow: Flow, offset: int) -> ActiveBlocks:
    slots: list[int] = []
    first_try: ExceptionEntry | None = None
    outside = None  # slots at or above the innermost try's depth are inside it
    entry = flow.covering.get(offset)
    seen = set()
    while entry is not None and entry not in seen:
        seen.add(entry)
        if flow.is_with_handler(entry.target):
            if outside is None or entry.depth - 1 < outside:
                slots.append(entry.depth - 1)
            cleanup = flow.covering.get(entry.target)
            if cleanup is None:
                raise BytecodeError(f"{flow.code.co_name}: with handler at {entry.target} has no cleanup entry")
            entry = flow.covering.get(cleanup.target)
        else:  # a try handler, or the cleanup of one: what encloses it is the handler's own cover
            first_try = first_try or entry
            outside = entry.depth if outside is None else min(outside, entry.depth)
            entry = flow.covering.get(entry.target)
    return ActiveBlocks(tuple(slots), first_try)
