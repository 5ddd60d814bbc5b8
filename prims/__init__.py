"""kiln.prims: torch-level fx graph -> ATen graph -> graph of Kiln's primitive ops.

    aten_gm = trace_aten(gm, example_inputs)   # Kiln's dispatcher tracer, static shapes
    functional_gm = functionalize(aten_gm)     # no in-place ops; input copy-backs and output aliasing in meta
    prims_gm = decompose(functional_gm)        # every call is a Prim (or an explicit fallback)
    call_with_effects(prims_gm, inputs)        # runs the prims' reference implementations, as eager would
"""
if __name__ != "kiln.prims":  # one copy of each module, one set of registries
    raise ImportError(f"Kiln's prims stage is imported as kiln.prims, not {__name__}")
from .aten_trace import trace_aten
from .builder import META_KEY, Value
from .decompose import decompose, fallback_nodes, prim_nodes
from .errors import DataDependentOp, FakeRunError, UnsupportedGraph, WrittenConstants
from .functionalize import functionalize
from .graph_io import MUTATIONS_KEY, OUTPUTS_KEY, InputMutation, OutputInfo, ViewOf, call_with_effects, describe
from .joint import JointGraph, TrainingGraphs, needs_joint, split_joint, trace_joint
from .meta import TensorMeta
from .op_fallback import fallback_reason
from .partition import Partition, partition
from .prim import PRIMS, Category, Prim, PrimMetaError
from .symbolic import NotConcrete


def lower(gm, example_inputs):
    """The prims entry point: torch-level GraphModule in, prims GraphModule out."""
    return decompose(functionalize(trace_aten(gm, example_inputs)))
