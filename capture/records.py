"""A record of every compile and fallback, for tools (the CLI, explain) to list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class CompiledGraphRecord:
    name: str                                    # the function's qualified name
    location: str                                # "file:line" of its definition
    graph: torch.fx.GraphModule | None = None    # None when nothing was captured
    guards: str = ""                             # readable guards, one per line
    reason: str | None = None                    # set when the function fell back to eager
    graph_break: Any = None                      # a breaks.GraphBreak when the graph ends at one

    def __repr__(self) -> str:
        what = f"fell back: {self.reason}" if self.reason else f"graph with {len(self.guards.splitlines())} guards"
        return f"CompiledGraphRecord({self.name} at {self.location}: {what})"


RECORDS: list[CompiledGraphRecord] = []


def compiled_records() -> list[CompiledGraphRecord]:
    return list(RECORDS)
