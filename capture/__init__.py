"""kiln.capture: read a Python function's bytecode symbolically and record its tensor work
into a torch.fx graph, handed to a backend `backend(gm, example_inputs) -> callable`.

    @kiln.compile(backend="eager", fullgraph=True)     # kiln.compile is kiln.capture.compile
    def f(x, y): ...
"""
if __name__ != "kiln.capture":  # one copy of each module, one set of caches and registries
    raise ImportError(f"Kiln's capture stage is imported as kiln.capture, not {__name__}")

from .api import CompiledModule, allow_in_graph, compile, disable, reset
from .explain import ExplainOutput, explain
from .dynamic import mark_dynamic, mark_static
from .backends import list_backends, lookup_backend, register_backend
from .exc import FallbackWarning, Unsupported
from .records import CompiledGraphRecord, compiled_records

__all__ = ["compile", "reset", "mark_dynamic", "mark_static", "disable", "allow_in_graph", "explain", "ExplainOutput", "Unsupported", "FallbackWarning",
           "register_backend", "lookup_backend", "list_backends", "CompiledModule", "CompiledGraphRecord", "compiled_records"]
