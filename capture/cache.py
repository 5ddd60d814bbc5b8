"""Compiled entries per code object (and backend), checked in order on each call."""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .guards import GuardSet, SharedReads
from .plans import EffectsPlan, OutputPlan
from .sources import SOURCE_NAMESPACE, Frame, Source


def make_input_extractor(sources: list[Source]) -> Callable:
    """Generate `extract(L, G, B, C) -> [graph inputs]` from the input sources; a value several
    inputs are read through (a module holding many parameters) is fetched once."""
    lines: list[str] = []
    read = SharedReads([(source, None) for source in sources], lines, indent="    ")
    body = ", ".join(read(source) for source in sources)
    text = "def extract_inputs(L, G, B, C):\n" + "".join(line + "\n" for line in lines) + f"    return [{body}]\n"
    namespace: dict[str, Any] = dict(SOURCE_NAMESPACE)
    exec(compile(text, "<kiln inputs>", "exec"), namespace)
    return namespace["extract_inputs"]


@dataclass
class CacheEntry:
    guards: GuardSet
    compiled: Callable | None            # the backend's callable; None if the graph is empty
    input_sources: list[Source]
    output_plan: OutputPlan
    graph_module: torch.fx.GraphModule | None
    effects: EffectsPlan | None = None   # Python side effects replayed after the graph
    extract_inputs: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.extract_inputs = make_input_extractor(self.input_sources)

    def run(self, frame: Frame) -> Any:
        outputs = ()
        if self.compiled is not None:
            outputs = self.compiled(*self.extract_inputs(frame.L, frame.G, frame.B, frame.C))
        if self.effects is None:
            return self.output_plan.build(outputs, frame)
        return self.effects.run(self.output_plan, outputs, frame)


@dataclass
class CodeCache:
    entries: list[CacheEntry] = field(default_factory=list)
    fallback_reason: str | None = None   # set once: the code then always runs eagerly


_CACHES: dict[tuple[types.CodeType, Any], CodeCache] = {}


def cache_for(code: types.CodeType, backend_key: Any) -> CodeCache:
    return _CACHES.setdefault((code, backend_key), CodeCache())


def clear() -> None:
    _CACHES.clear()
