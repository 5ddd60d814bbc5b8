"""The Triton backend object the wrapper generator talks to.

Kernels are written to a module file in the cache (Triton reads kernel source from files) and
imported from there. For CPU tensors the module (and codegen.triton.device_math) is imported
with TRITON_INTERPRET=1, which makes `triton.jit` build interpreter functions; generated code
calls only Triton builtins and Kiln's own device functions, so it does not matter how triton
itself was first imported. Each kernel is called through a KernelLauncher (autotune.py), which
picks its launch config.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import threading

from kiln.prims import UnsupportedGraph

from .. import cache_files
from ..cache_files import CacheEntryError
from ..index_check import FLAG_READER, checks_indices, kernel_checks_indices
from ..kernel_args import kernel_args, size_params
from .autotune import KernelLauncher
from .configs import candidate_configs, numel
from .harness import standalone_file
from .render import render_kernel, render_module


# Triton's interpreter is process-wide state: TRITON_INTERPRET is read when a module is imported, and
# triton.language is patched while an interpreted kernel runs. Both happen under this lock, so
# threads compiling and calling graphs at once do not see each other's half-done state.
INTERPRETER_LOCK = threading.RLock()


@contextlib.contextmanager
def _interpreter(on: bool):
    if not on:
        yield
        return
    with INTERPRETER_LOCK:
        old = os.environ.get("TRITON_INTERPRET")
        os.environ["TRITON_INTERPRET"] = "1"
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = old


class TritonBackend:
    name = "triton"

    def __init__(self, kernels, buffers: dict, interpret: bool | None = None):
        """`buffers`: every buffer of the graph by name (the kernels' inputs' layouts and devices)."""
        self.kernels = kernels
        self.args = {k.name: kernel_args(k) for k in kernels}
        self.configs = {k.name: candidate_configs(k) for k in kernels}
        self.kernel_sources = {k.name: render_kernel(k) for k in kernels}
        self.source = render_module(self.kernel_sources.values()) if kernels else ""
        self.layouts = {a.buffer: buffers[a.buffer].layout for args in self.args.values() for a in args}
        self.module = None
        self.launchers: dict[str, KernelLauncher] = {}
        self.checks_indices = checks_indices(kernels)
        if not kernels:
            return
        devices = {lay.device for lay in self.layouts.values()}
        if len(devices) > 1:
            raise UnsupportedGraph(f"Triton kernels read and write tensors on several devices ({sorted(map(str, devices))})")
        device = devices.pop()
        if self.checks_indices:  # an int32 flag the kernels' index checks store 1 into, one per Python thread
            self._flags = threading.local()
            self._flag_device = device
        if interpret is None:
            interpret = device.type == "cpu"
        if interpret:
            _check_device_math_interpreted()
        elif device.type != "cuda":
            raise UnsupportedGraph(f"Triton kernels run on CUDA devices (or the interpreter on CPU), not {device}")
        self.path, key = _module_file(self.source)
        spec = importlib.util.spec_from_file_location(f"kiln_triton_{key}", self.path)
        self.module = importlib.util.module_from_spec(spec)
        with _interpreter(interpret):
            spec.loader.exec_module(self.module)
        if getattr(self.module, KEY_NAME, None) != key:
            raise CacheEntryError(f"{self.path} is not the module written for its key; another writer replaced it")
        device_name = "interpreter" if interpret else _device_name(device)
        for k in kernels:
            self.launchers[k.name] = KernelLauncher(getattr(self.module, k.name), self.kernel_sources[k.name],
                                                    self.configs[k.name], autotune=not interpret,
                                                    device=device_name,
                                                    lock=INTERPRETER_LOCK if interpret else None)

    def call_kernel(self, kernel, var) -> str:
        xnumel = numel(kernel.outer)
        if xnumel == 0:
            return f"pass  # {kernel.name}: nothing to compute for empty tensors"
        args = [var(a.buffer) for a in self.args[kernel.name]] + [f"xnumel={xnumel}"]
        if kernel_checks_indices(kernel):
            args.insert(-1, "kiln_index_error_flag()")
        if kernel.inner:
            args.append(f"rnumel={numel(kernel.inner)}")
        sizes = size_params(self.kernel_sources[kernel.name].split("\n", 2)[1])
        if sizes:
            args.append(f"symbols=({', '.join(sizes)},)")
        return f"{kernel.name}({', '.join(args)})"

    def globals(self) -> dict:
        out = dict(self.launchers)
        if self.checks_indices:
            out.update({"kiln_index_error_flag": self._error_flag, FLAG_READER: self._take_index_error})
        return out

    def _error_flag(self):
        """This thread's flag buffer: concurrent calls of one compiled graph keep their errors apart."""
        flag = getattr(self._flags, "buf", None)
        if flag is None:
            import torch

            flag = self._flags.buf = torch.zeros(1, dtype=torch.int32, device=self._flag_device)
        return flag

    def _take_index_error(self) -> bool:
        """Whether a kernel of this thread met a bad index since the last call (clears the flag; a
        sync on GPUs)."""
        flag = self._error_flag()
        if not int(flag.item()):
            return False
        flag.zero_()
        return True

    def sources(self) -> dict[str, str]:
        """Files for `kiln dump`: the module Kiln imports, and each kernel runnable on its own."""
        if not self.kernels:
            return {}
        files = {"kernels_triton.py": self.source}
        for k in self.kernels:
            files[f"{k.name}.py"] = standalone_file(k, self.kernel_sources[k.name], self.args[k.name], self.layouts,
                                                    self.configs[k.name][0], kernel_checks_indices(k))
        return files


KEY_NAME = "KILN_CACHE_KEY"


def _module_file(source: str):
    """(path, key) of the module file for `source` in the cache: used when it holds exactly this
    source and its key line (Triton reads kernel source from files), else written afresh."""
    key = hashlib.sha256(source.encode()).hexdigest()[:32]
    text = f"{source}\n{KEY_NAME} = {key!r}\n".encode()
    path = cache_files.cache_dir("triton") / f"k{key}.py"
    if cache_files.read_bytes(path) == text:
        return path, key
    for d in (cache_files.writable_dir("triton"), cache_files.private_dir("triton")):
        path = d / f"k{key}.py"
        try:
            cache_files.atomic_write(path, text)
            return path, key
        except OSError:  # e.g. an entry we may not replace: the private folder then
            continue
    raise CacheEntryError(f"could not write the Triton module k{key}.py anywhere")


def _device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device)


def _check_device_math_interpreted():
    with _interpreter(True):
        from . import device_math
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(device_math.maximum, InterpretedFunction):
        raise UnsupportedGraph("Triton device functions were loaded for a GPU in this process; "
                               "CPU tensors cannot run them (use target='cpp')")
