"""What the back end hands back when a graph cannot run compiled, and the guard around a compiled one.

- `EagerGraph(gm)`: the graph run op by op (kiln/eager_graph.py, never fx's printed code), built on
  first use; `.flat` gives the outputs flattened as the wrapper's.
- `eager_first(eager, error)`: for a compile error that may be the user's own (a prim's meta check,
  an op failing on fake tensors): the first call runs eagerly. If eager raises, that is the user's
  error, raised as eager raises it (type and message, strict or not); if eager runs, Kiln was wrong
  to refuse: one warning (strict: Kiln's error) and eager from then on.
- `guarded_call(...)`: the compiled call, made safe at call time. When inputs that the graph
  mutates no longer keep the storage relationships seen at compile time (input_storage.py), the
  graph is compiled again for the new ones (kept, up to MAX_ALIASING_VARIANTS per graph); only if
  that fails does the call run eagerly (one warning). When the compiled call raises, the graph runs eagerly on the same
  inputs: eager's error, if eager raises too; otherwise one warning and eager from then on. Nothing a
  compiled call does before it returns is visible to the caller (input copy-backs come last, after
  every kernel), so the eager rerun starts from the caller's own values; the one exception is the
  wrapper's own eager rerun after a bad index (codegen/index_check.py), whose error is eager's and
  is passed on as it is (`EagerGraph.raised`), never run a second time.
"""
from __future__ import annotations

import sys
import threading
import warnings

from torch.utils._pytree import tree_flatten

from . import config
from .eager_graph import eager_runner


class KilnCompileWarning(UserWarning):
    """Kiln could not compile a graph (or run it compiled) and runs it eagerly."""


_INTERNAL = ("torch", "kiln", "contextlib", "functools")


def user_stacklevel() -> int:
    """The `stacklevel`, for a warning raised by this module's caller, of the first frame outside
    torch and Kiln: the user's line whose call compiled or ran this graph."""
    frame, level = sys._getframe(2), 2  # level 1: our caller, the frame that calls warnings.warn
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _INTERNAL:
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2


def warn(message: str) -> None:
    warnings.warn(f"kiln: {message}", KilnCompileWarning, stacklevel=user_stacklevel())


class EagerGraph:
    """`gm` run eagerly, from its nodes; the runner is generated on first use (compiled graphs
    mostly never need it)."""

    def __init__(self, gm):
        self.gm = gm
        self._run = None
        self._lock = threading.Lock()
        self._raised = threading.local()  # .error: what `flat` last raised in this thread

    def runner(self):
        if self._run is None:
            with self._lock:
                if self._run is None:
                    self._run = eager_runner(self.gm)
        return self._run

    def __call__(self, *inputs):
        return self.runner()(*inputs)

    def flat(self, *inputs) -> tuple:
        """Outputs flattened as the wrapper returns them. The wrapper calls this inside a compiled
        call (its index-error rerun); what it raises is eager's own error, already final: its
        input writes are done, so it must reach the caller as it is, not cause another run."""
        try:
            return tuple(tree_flatten(self(*inputs))[0])
        except Exception as e:
            self._raised.error = e
            raise

    def raised(self, error: Exception) -> bool:
        """Whether `error` came out of `flat` (and forget it)."""
        hit = getattr(self._raised, "error", None) is error
        self._raised.error = None
        return hit


def eager_first(eager: EagerGraph, error: Exception, what: str):
    """The callable for a graph whose compile failed with an error that may be the program's own."""
    state = {"checked": False}

    def run(*inputs):
        result = eager(*inputs)  # a wrong program raises here, with eager's own error
        if not state["checked"]:
            state["checked"] = True
            if config.strict:
                raise error
            warn(f"could not compile this graph ({what}); running it eagerly")
        return result

    return run


MAX_ALIASING_VARIANTS = 8  # compiles of one graph for other memory sharing among its inputs


def guarded_call(call, eager: EagerGraph, storage_check=None, recompile=None):
    """`call`, run only when it can give eager's answer; otherwise the graph runs eagerly. Costs
    one Python call and a `try` per call, plus `storage_check` when the graph writes inputs. Inputs
    that share memory otherwise than the compiled graph assumed get a graph compiled for them
    (`recompile(inputs) -> (call, storage_check)`), kept for later calls alike; only when that fails
    does the call run eagerly."""
    broken = None  # the error that made this graph run eagerly from now on
    aliased_warned = False
    variants = []  # (storage_check, call) compiled for other memory sharing
    lock = threading.Lock()

    def run(*inputs):
        if broken is not None:
            return eager(*inputs)
        try:
            return call(*inputs)
        except Exception as e:  # noqa: BLE001  (handled below, outside this block: no chained internal error)
            error = e
        return _failed(error, inputs)

    def run_checked(*inputs):
        if broken is not None:
            return eager(*inputs)
        fn = call if storage_check(inputs) else _variant(inputs)
        if fn is None:
            return _aliased(inputs)
        try:
            return fn(*inputs)
        except Exception as e:  # noqa: BLE001
            error = e
        return _failed(error, inputs)

    def _variant(inputs):
        """The call compiled for this memory sharing (compiled now if new), or None."""
        for check, fn in variants:
            if check is None or check(inputs):
                return fn
        if recompile is None:
            return None
        with lock:
            if len(variants) >= MAX_ALIASING_VARIANTS:
                return None
            try:
                fn, check = recompile(list(inputs))
            except Exception:  # noqa: BLE001  (this call runs eagerly, below)
                if config.strict:
                    raise
                return None
            variants.append((check, fn))
            return fn

    def _aliased(inputs):
        nonlocal aliased_warned
        why = storage_check.explain(inputs)
        if config.strict:
            raise RuntimeError(f"kiln: {why}; the compiled graph assumed otherwise (KILN_STRICT=1)")
        if not aliased_warned:
            aliased_warned = True
            warn(f"{why}; this call runs eagerly (the compiled graph assumed otherwise)")
        return eager(*inputs)

    def _failed(error, inputs):
        nonlocal broken
        if eager.raised(error):  # the wrapper ran the graph eagerly already, and eager raised
            raise error
        result = eager(*inputs)  # eager raises too: the program's own error, raised as eager raises it
        if config.strict:
            raise error
        if broken is None:
            broken = error
            warn(f"the compiled graph failed when called ({type(error).__name__}: {error}); running it eagerly")
        return result

    return run if storage_check is None else run_checked
