"""inductor: prims graph -> loop IR -> fused kernels. `compile_fx` is the `kiln` backend.

    compiled = compile_fx(gm, example_inputs, target=None)   # "cpp" | "triton"; default by device
"""
import os as _os

import torch as _torch

# Triton fixes interpreter mode when first imported (torch may import it early). With no CUDA
# device, the interpreter is the only way Triton kernels can run, so ask for it up front.
if not _torch.cuda.is_available():
    _os.environ.setdefault("TRITON_INTERPRET", "1")

from .compile_fx import CompiledGraph, KilnCompileWarning, compile_fx, compile_graph  # noqa: E402,F401
