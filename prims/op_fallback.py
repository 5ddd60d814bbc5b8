"""Op-level fallback for dtypes the target cannot render: the ATen op that reads, writes or computes
in such a dtype runs as is (a `kiln.fallback` node: a library call on real tensors between the
generated kernels), instead of the whole graph running eagerly.

The back end passes the target's renderable dtypes (the C++ or Triton type table) to `decompose`.
An ATen node falls back when one of its tensor arguments or results has another dtype (checked on
the ATen trace's metas, before decomposing), or when its decomposition emitted a prim that computes
in one (checked on the prims it emitted, which are then rolled back). Extern prims that are the
ATen op itself run ATen on real tensors and take any dtype.
"""
from __future__ import annotations

import torch
import torch.fx as fx

from .builder import META_KEY, metas_of
from .meta import TensorMeta
from .prim import Prim

FALLBACK_REASON_KEY = "kiln_fallback_reason"  # node.meta of a kiln.fallback node: why it is one
NO_DECOMPOSITION = "no decomposition"
# Extern prims at the edge of the complex pair representation (decomp/complex.py): views of bytes.
PAIR_BOUNDARY = frozenset({"view_as_complex", "view_as_real", "resolve_conj"})



def _dtypes(tree):
    if isinstance(tree, TensorMeta):
        yield tree.dtype
    elif isinstance(tree, (list, tuple)):
        for x in tree:
            yield from _dtypes(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            yield from _dtypes(x)


def _unrenderable(dtypes, renderable) -> torch.dtype | None:
    return next((d for d in dtypes if d not in renderable), None)


def _reason(dtype: torch.dtype, target: str) -> str:
    return f"dtype {str(dtype).replace('torch.', '')} has no {target} rendering"


def aten_node_reason(node: fx.Node, renderable, target: str) -> str | None:
    """Why an ATen node must run as is (a dtype of its arguments or results is not renderable), or None."""
    if renderable is None:
        return None
    metas = (metas_of(node.args), metas_of(node.kwargs), node.meta.get(META_KEY))
    bad = _unrenderable(_dtypes(metas), renderable)
    return None if bad is None else _reason(bad, target)


def involves_complex(node: fx.Node) -> bool:
    """A tensor argument or result of the ATen node is complex."""
    metas = (metas_of(node.args), metas_of(node.kwargs), node.meta.get(META_KEY))
    return any(d.is_complex for d in _dtypes(metas))


def emitted_reason(new_nodes, renderable, target: str) -> str | None:
    """Why a decomposition's prims cannot be rendered, or None. Their inputs are the ATen node's
    arguments (checked already) or results of prims it emitted, so the results' dtypes decide: one
    outside the table (even a library prim's, since a prim reads it next) means the op runs as is.
    The complex-pair boundary prims (view_as_complex and back) are library views that only kernels'
    real pairs or other library calls read."""
    for n in new_nodes:
        if isinstance(n.target, Prim) and n.target.name in PAIR_BOUNDARY:
            continue
        meta = n.meta.get(META_KEY)
        metas = meta if isinstance(meta, tuple) else (meta,)
        for m in metas:
            if m is not None and m.dtype not in renderable:
                what = n.target.name if isinstance(n.target, Prim) else n.target.__name__
                return _reason(m.dtype, target) + f" (kiln.{what} computes in it)"
    return None


def fallback_reason(node: fx.Node) -> str:
    """Why a kiln.fallback node runs its ATen op as is."""
    return node.meta.get(FALLBACK_REASON_KEY, NO_DECOMPOSITION)
