"""Backends: `backend(gm, example_inputs) -> callable`, torch.compile's protocol.

Names resolve in order: built-ins ("eager", "inductor"), `register_backend`,
then the `torch_dynamo_backends` entry-point group (where "kiln" lives).
This module never imports Kiln's own inductor/codegen: that is a layer rule.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import threading
from typing import Callable

import torch

Backend = Callable[[torch.fx.GraphModule, list], Callable]
ENTRY_POINT_GROUP = "torch_dynamo_backends"


def eager(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
    """Run the captured graph as it is."""
    return gm.forward


def torch_inductor(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
    """PyTorch's own inductor (loaded by name: importing it is slow)."""
    compile_fx = importlib.import_module("torch._inductor.compile_fx").compile_fx
    return compile_fx(gm, example_inputs)


_REGISTRY: dict[str, Backend] = {"eager": eager, "inductor": torch_inductor}
_RESOLVING = threading.RLock()  # a name is resolved (its entry point loaded) once, by one thread


def register_backend(name: str, backend: Backend) -> None:
    _REGISTRY[name] = backend


def _entry_points(group: str):
    return importlib.metadata.entry_points(group=group)


def lookup_backend(backend: str | Backend) -> Backend:
    if callable(backend):
        return backend
    if backend in _REGISTRY:
        return _REGISTRY[backend]
    with _RESOLVING:
        return _REGISTRY.get(backend) or _resolve(backend)


def _resolve(backend: str) -> Backend:
    for entry_point in _entry_points(ENTRY_POINT_GROUP):
        if entry_point.name == backend:
            try:
                loaded = entry_point.load()
            except Exception as error:
                raise RuntimeError(f"backend {backend!r} (entry point {entry_point.value}) failed to load: "
                                   f"{type(error).__name__}: {error}") from error
            _REGISTRY[backend] = loaded
            return loaded
    known = sorted(set(_REGISTRY) | {entry_point.name for entry_point in _entry_points(ENTRY_POINT_GROUP)})
    raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(known)}")


def list_backends() -> list[str]:
    return sorted(set(_REGISTRY) | {entry_point.name for entry_point in _entry_points(ENTRY_POINT_GROUP)})
