"""capture: read a Python function's bytecode symbolically and record its tensor work
into a torch.fx graph, handed to a backend `backend(gm, example_inputs) -> callable`.

    @capture.compile(backend="eager", fullgraph=True)
    def f(x, y): ...
"""
from . import config
from .api import CompiledModule, allow_in_graph, compile, disable, reset
from .explain import ExplainOutput, explain
from .backends import list_backends, lookup_backend, register_backend
from .exc import FallbackWarning, Unsupported
from .logs import enable_from_env as _enable_logs_from_env
from .records import CompiledGraphRecord, compiled_records

_enable_logs_from_env()

__all__ = ["compile", "reset", "disable", "allow_in_graph", "explain", "ExplainOutput", "config", "Unsupported", "FallbackWarning", "register_backend",
           "lookup_backend", "list_backends", "CompiledModule", "CompiledGraphRecord", "compiled_records"]
