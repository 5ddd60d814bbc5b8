"""prims: torch-level fx graph -> ATen graph -> graph of Kiln's primitive ops.

    aten_gm = trace_aten(gm, example_inputs)   # Kiln's dispatcher tracer, static shapes
    prims_gm = decompose(aten_gm)              # every call is a Prim (or an explicit fallback)
    prims_gm(*example_inputs)                  # runs the prims' reference implementations
"""
from .aten_trace import OUTPUTS_KEY, OutputInfo, trace_aten
from .builder import META_KEY, Value
from .decompose import decompose, prim_nodes
from .errors import UnsupportedGraph
from .meta import TensorMeta
from .prim import PRIMS, Category, Prim, PrimMetaError


def lower(gm, example_inputs):
    """The prims entry point: torch-level GraphModule in, prims GraphModule out."""
    return decompose(trace_aten(gm, example_inputs))
