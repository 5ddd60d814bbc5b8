"""The `torch_dynamo_backends` entry point, `kiln = kiln.dynamo_entry:backend`.

TorchDynamo resolves a backend name with a check-then-register that holds no lock
(torch/_dynamo/backends/registry.py, `lookup_backend`: the name is not in `_COMPILER_FNS`, so load
its entry point and `register_backend` it, which asserts the name is new). Threads making a
process's first `torch.compile(..., backend="kiln")` at once all pass the check while the first
one imports Kiln, and all but one then fail with `AssertionError('duplicate name: kiln')`. They
have already looked up `register_backend` by then, so only the dict it checks can change what they
see: loading the entry point (which each of them does just before registering) first puts, once and
under a lock, torch's `_COMPILER_FNS` entries into a dict that says, to `register_backend` only,
that a name already holding `compile_fx` does not hold it when `compile_fx` is registered again.
torch then stores the same function under the same name, a no-op. Every other question to the
registry gets the plain answer.

`backend` is resolved by the module's `__getattr__`, so this runs on every load of the entry point
(a plain attribute would run code only at the first import), and it never imports TorchDynamo
itself: `kiln.compile` resolves the same entry point without it.
"""
from __future__ import annotations

import sys
import threading

from .backend import compile_fx

_REGISTRY_MODULE = "torch._dynamo.backends.registry"
_lock = threading.Lock()


def __getattr__(name: str):
    if name != "backend":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = sys.modules.get(_REGISTRY_MODULE)
    if registry is not None:  # TorchDynamo is resolving backend names: make registering Kiln twice safe first
        _install(registry)
    return compile_fx


class _CompilerFns(dict):
    """torch's `_COMPILER_FNS`, except that `register_backend(compile_fx, name)` sees no duplicate
    when `name` already holds `compile_fx`."""

    register_code = None  # register_backend.__code__

    def __contains__(self, name) -> bool:
        if dict.get(self, name) is compile_fx:
            caller = sys._getframe(1)
            if caller.f_code is self.register_code and caller.f_locals.get("compiler_fn") is compile_fx:
                return False
        return dict.__contains__(self, name)


def _install(registry) -> None:
    fns = getattr(registry, "_COMPILER_FNS", None)
    register = getattr(registry, "register_backend", None)
    if type(fns) is _CompilerFns or not isinstance(fns, dict) or not hasattr(register, "__code__"):
        return
    with _lock:
        if type(registry._COMPILER_FNS) is _CompilerFns:
            return
        kept = _CompilerFns(registry._COMPILER_FNS)
        kept.register_code = register.__code__
        registry._COMPILER_FNS = kept
