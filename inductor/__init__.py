"""inductor: prims graph -> loop IR -> fused kernels. `compile_fx` is the `kiln` backend.

    compiled = compile_fx(gm, example_inputs, target=None)   # "cpp" | "triton"; default by device
"""
from .compile_fx import CompiledGraph, KilnCompileWarning, compile_fx, compile_graph  # noqa: F401
