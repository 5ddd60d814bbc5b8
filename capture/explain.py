"""`kiln.explain(fn)(*args)`: compile and run `fn` once on its own counting backend and say
what happened: how many graphs, how many graph breaks and why, which frames ran eagerly."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import breaks, records
from .api import compile as compile_fn
from .exc import FallbackWarning


def op_count(graph: torch.fx.GraphModule) -> int:
    return sum(1 for node in graph.graph.nodes if node.op in ("call_function", "call_method", "call_module")
               and node.target is not torch._C._set_grad_enabled)


@dataclass
class ExplainOutput:
    graph_count: int
    graph_break_count: int
    breaks: list[breaks.GraphBreak] = field(default_factory=list)
    graphs: list[torch.fx.GraphModule] = field(default_factory=list, repr=False)
    ops_per_graph: list[int] = field(default_factory=list)
    eager_frames: list[str] = field(default_factory=list)   # "name (file:line): reason"

    def __str__(self) -> str:
        lines = [f"Graph count: {self.graph_count}", f"Graph break count: {self.graph_break_count}"]
        if self.breaks:
            lines.append("Break reasons:")
            for number, item in enumerate(self.breaks, 1):
                lines += [f"  {number}. {item.reason}", f"     in {item.function} at {item.location}",
                          f"     hint: {item.hint}"]
        if self.ops_per_graph:
            lines.append("Ops per graph: " + ", ".join(map(str, self.ops_per_graph)))
        if self.eager_frames:
            lines.append("Ran eagerly:")
            lines += [f"  {frame}" for frame in self.eager_frames]
        return "\n".join(lines)


class _Counting:
    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return gm.forward


def explain(fn: Callable) -> Callable[..., ExplainOutput]:
    """`explain(fn)(*args, **kwargs)` runs `fn` compiled (graphs run as captured, so results are
    eager's) and returns an ExplainOutput. Nothing is kept in the caches `kiln.compile` uses."""
    original = getattr(fn, "_kiln_original", fn)  # explain(kiln.compile(f)) explains f

    def run(*args, **kwargs) -> ExplainOutput:
        backend = _Counting()  # a new backend object: new cache entries, counted graphs
        first_break, first_record = len(breaks.BREAKS), len(records.RECORDS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FallbackWarning)  # listed in the output instead
            compile_fn(original, backend=backend)(*args, **kwargs)
        made = breaks.BREAKS[first_break:]
        eager = [f"{r.name} ({r.location}): {r.reason}" for r in records.RECORDS[first_record:] if r.reason]
        return ExplainOutput(len(backend.graphs), len(made), list(made), list(backend.graphs),
                             [op_count(graph) for graph in backend.graphs], eager)

    return run
