"""The argument list of a kernel, shared by every backend: buffers read, then buffers written."""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from kiln.inductor.ir import loop as L
from kiln.inductor.ir.loop import LoopOp


@dataclass(frozen=True)
class KernelArg:
    buffer: str
    dtype: torch.dtype
    written: bool


SIZE_SYMBOL = re.compile(r"\bk[sd]\d+\b")  # ks0: a size symbol; kd0: a derived size (prims/symbolic.py)


def size_params(text: str) -> list[str]:
    """The size symbols a kernel's code reads (prims/symbolic.py), in a fixed order: its integer
    arguments after the buffers (a graph of symbolic sizes)."""
    return sorted(set(SIZE_SYMBOL.findall(text)), key=lambda s: (s[1], int(s[2:])))


def kernel_args(kernel) -> list[KernelArg]:
    written = {n.name: n.buffer.layout.dtype for n in kernel.nodes if n.stored}
    own = {n.name for n in kernel.nodes}  # stored ones are written args; the others live in the kernel
    args: dict[str, KernelArg] = {}
    for n in kernel.nodes:
        for m in L.walk(n.body):
            if m.op in L.LOADS and m.attr[0] not in own and m.attr[0] not in args:
                args[m.attr[0]] = KernelArg(m.attr[0], m.dtype, False)
    for name, dtype in written.items():
        args[name] = KernelArg(name, dtype, True)
    return list(args.values())
