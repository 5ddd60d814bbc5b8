"""ATen ops made extern prims (prims/ops/extern.py lists them with reasons): called as they are."""
from __future__ import annotations

import torch

from ..errors import UnsupportedGraph
from ..ops.extern import EXTERN_REASON
from ..prim import PRIMS
from .registry import register

aten = torch.ops.aten


def _call(prim):
    return lambda *args, **kwargs: prim(*args, **kwargs)


for _name in EXTERN_REASON:
    register(PRIMS[_name].extra["aten"])(_call(PRIMS[_name]))

# ATen overload -> its extern prim (prims/decompose.py calls these with eager's argument layouts).
EXTERN_PRIMS = {PRIMS[name].extra["aten"]: PRIMS[name] for name in EXTERN_REASON}


@register(aten._linalg_check_errors.default)
def linalg_check_errors(info, api_name, *, is_matrix):
    PRIMS["linalg_check_errors"](info, api_name, is_matrix=is_matrix)  # kept: the prim is impure
    return None


@register(aten._assert_scalar.default)
def assert_scalar(cond, msg):
    """TorchDynamo's runtime checks on sizes (u0 >= 0): with static shapes they were decided, true,
    when the graph was traced (a false one raised then)."""
    if cond is not True:
        raise UnsupportedGraph(f"a runtime assertion on a value Kiln does not know: {msg}")
    return None
