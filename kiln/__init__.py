"""Kiln: a small, readable graph-capture compiler for PyTorch.

    import kiln

    @kiln.compile                                   # Kiln's bytecode capture + Kiln's back end
    def f(x): ...

    torch.compile(model, backend="kiln")            # TorchDynamo + Kiln's back end

The four stages are kiln.capture, kiln.prims, kiln.inductor and kiln.codegen; this package ties
them together (kiln.backend), holds the settings (kiln.config) and logging (kiln.logs), and the
`kiln` command (kiln.cli).
"""
__version__ = "0.1.0"

from . import config  # first: every stage reads its settings from here
from .logs import enable_from_config as _enable_logs

_enable_logs()

from . import capture, records  # noqa: E402
from .backend import CompiledGraph, KilnCompileWarning, compile_fx, compile_graph  # noqa: E402
from .capture import (FallbackWarning, Unsupported, allow_in_graph, compile, disable, explain,  # noqa: E402
                      mark_dynamic, mark_static)
from .profiling import profile_report  # noqa: E402


def reset() -> None:
    """Forget every compiled function, graph break and record (capture's caches, the back end's records)."""
    capture.reset()
    records.clear()


__all__ = ["__version__", "compile", "explain", "disable", "allow_in_graph", "mark_dynamic", "mark_static", "reset", "compile_fx", "compile_graph",
           "CompiledGraph", "KilnCompileWarning", "FallbackWarning", "Unsupported", "config", "profile_report"]
