"""The Triton backend object the wrapper generator talks to.

Kernels are written to a module file in the cache (Triton reads kernel source from files) and
imported from there. CPU tensors need Triton's interpreter, which Triton fixes when it is first
imported (TRITON_INTERPRET=1); see codegen/triton/__init__.py.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from prims import UnsupportedGraph

from ..kernel_args import kernel_args
from .render import launch_config, render_module


def _cache_dir() -> Path:
    root = os.environ.get("KILN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kiln")
    path = Path(root) / "triton"
    path.mkdir(parents=True, exist_ok=True)
    return path


def interpreter_active() -> bool:
    """Was triton imported in interpreter mode? (Its standard library is decorated at import.)"""
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(tl.sum, InterpretedFunction)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class TritonBackend:
    name = "triton"

    def __init__(self, kernels, interpret: bool | None = None):
        self.kernels = kernels
        self.args = {k.name: kernel_args(k) for k in kernels}
        self.configs = {k.name: launch_config(k) for k in kernels}
        self.source = render_module(kernels) if kernels else ""
        self.module = None
        if kernels:
            if interpret is None:
                interpret = all(n.buffer.layout.device.type == "cpu" for k in kernels for n in k.nodes)
            if interpret and not interpreter_active():
                raise UnsupportedGraph("Triton kernels on CPU tensors need Triton's interpreter, but triton was "
                                       "imported before Kiln without TRITON_INTERPRET=1; set it in the environment")
            key = hashlib.sha256(self.source.encode()).hexdigest()[:32]
            path = _cache_dir() / f"k{key}.py"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(self.source)
                os.replace(tmp, path)
            spec = importlib.util.spec_from_file_location(f"kiln_triton_{key}", path)
            self.module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(self.module)
            self.path = path

    def call_kernel(self, kernel, var) -> str:
        cfg = self.configs[kernel.name]
        xnumel = max(_numel(kernel.outer), 1)
        grid = -(-xnumel // cfg["XBLOCK"])
        args = [var(a.buffer) for a in self.args[kernel.name]] + [str(xnumel)]
        if kernel.inner:
            args.append(str(_numel(kernel.inner)))
        blocks = ", ".join(f"{k}={v}" for k, v in cfg.items())
        return f"{kernel.name}[({grid},)]({', '.join(args)}, {blocks})"

    def globals(self) -> dict:
        return {k.name: getattr(self.module, k.name) for k in self.kernels}

    def sources(self) -> dict[str, str]:
        return {"kernels_triton.py": self.source} if self.source else {}
