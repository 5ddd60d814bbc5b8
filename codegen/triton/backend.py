"""The Triton backend object the wrapper generator talks to.

Kernels are written to a module file in the cache (Triton reads kernel source from files) and
imported from there. For CPU tensors the module (and codegen.triton.device_math) is imported
with TRITON_INTERPRET=1, which makes `triton.jit` build interpreter functions; generated code
calls only Triton builtins and Kiln's own device functions, so it does not matter how triton
itself was first imported.
"""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _interpreter(on: bool):
    old = os.environ.get("TRITON_INTERPRET")
    if on:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if on and old is None:
            os.environ.pop("TRITON_INTERPRET", None)
        elif on:
            os.environ["TRITON_INTERPRET"] = old


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
            if interpret:
                _check_device_math_interpreted()
            key = hashlib.sha256(self.source.encode()).hexdigest()[:32]
            path = _cache_dir() / f"k{key}.py"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(self.source)
                os.replace(tmp, path)
            spec = importlib.util.spec_from_file_location(f"kiln_triton_{key}", path)
            self.module = importlib.util.module_from_spec(spec)
            with _interpreter(interpret):
                spec.loader.exec_module(self.module)
            self.path = path

    def call_kernel(self, kernel, var) -> str:
        cfg = self.configs[kernel.name]
        xnumel = _numel(kernel.outer)
        if xnumel == 0:
            return f"pass  # {kernel.name}: nothing to compute for empty tensors"
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


def _check_device_math_interpreted():
    with _interpreter(True):
        from . import device_math
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(device_math.maximum, InterpretedFunction):
        raise UnsupportedGraph("Triton device functions were loaded for a GPU in this process; "
                               "CPU tensors cannot run them (use target='cpp')")
