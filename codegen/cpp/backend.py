"""The C++ backend object the wrapper generator talks to."""
from __future__ import annotations

from kiln.logs import stage

from ..index_check import FLAG_READER, checks_indices
from ..kernel_args import kernel_args
from . import build
from .index_check import flag_reader
from .render import render_parts


class CppBackend:
    name = "cpp"

    def __init__(self, kernels):
        self.kernels = kernels
        self.args = {k.name: kernel_args(k) for k in kernels}
        with stage("render"):
            rendered = render_parts(kernels) if kernels else None
        self.source = rendered.text if rendered else ""
        self.same_as = rendered.same_as if rendered else {}  # kernel -> the function it calls
        self.sizes = rendered.sizes if rendered else {}  # kernel -> size symbols it takes (symbolic graphs)
        self.library = None
        self._fns = {}
        self.checks_indices = checks_indices(kernels)
        if kernels:
            with stage("cxx_build"):
                self.library = build.build(self.source, rendered)
                self._fns = build.load(self.library, {k: len(self.args[k]) + len(self.sizes[k]) for k in rendered.kernels})
        if self.checks_indices:
            self._fns[FLAG_READER] = flag_reader(self.library)

    def call_kernel(self, kernel, var) -> str:
        ptrs = ", ".join([f"{var(a.buffer)}.data_ptr()" for a in self.args[kernel.name]] + self.sizes[kernel.name])
        return f"{self.same_as[kernel.name]}({ptrs})"

    def globals(self) -> dict:
        return dict(self._fns)

    def sources(self) -> dict[str, str]:
        return {"kernels.cpp": self.source} if self.source else {}
