"""Which forward values a joint graph saves for its backward: a minimum cut (networkx).

The flow network has two vertices per forward node n, `n_in -> n_out`, whose capacity is the cost
of saving n (its bytes). A data edge `n_out -> user_in` and every edge to the sink (a backward node
reads n) or from the source (n must run in the forward and may not run again) is infinite. A cut
separating the source from the sink then crosses only `n_in -> n_out` edges: those nodes are saved,
and the forward nodes left on the sink's side are computed in the backward from what is saved. The
minimum cut is the set of saved values of fewest bytes; everything between it and the backward is
recomputed. As in AOTAutograd's min_cut_rematerialization_partition (rewritten here, smaller).

What may run again in the backward (`recomputable`): pointwise, broadcast/shape, data movement,
conversion and creation prims. Never: random draws (the backward must see the forward's mask, and a
recomputed draw is only equal by construction of the counter-based stream, which is not worth
relying on), matmul/convolution/library calls (EXTERN: their cost is the point of saving), op-level
fallbacks (opaque), impure prims (runtime checks). Reductions only when they barely reduce (output at
least a quarter of the input): a real reduction's output is small, so saving it costs little, while
recomputing it costs a whole pass over its input and does not fuse into the backward's pointwise
kernels the way a pointwise prim does (LayerNorm's mean/rstd, softmax's max/sum are saved, not
recomputed).

Recomputation is bounded: a forward node more than MAX_RECOMPUTE_DISTANCE data edges away from the
nearest backward node is not recomputed, so the backward never replays a long stretch of the forward.
The graph is built in one pass over the joint graph; networkx's max-flow does the rest.
"""
from __future__ import annotations

import math
import operator

import networkx as nx
import torch.fx as fx

from .builder import META_KEY
from .symbolic import size_hint
from .meta import TensorMeta
from .prim import Category, Prim

MAX_RECOMPUTE_DISTANCE = 16  # data edges from the nearest backward node
REDUCTION_RATIO = 4  # a reduction whose output is at least 1/4 of its input may be recomputed
_TIE_BREAK_CAP = 64  # on a tie in bytes, save inputs first, then the nodes nearest the backward

RECOMPUTABLE = frozenset({Category.UNARY, Category.BINARY, Category.TERNARY, Category.SHAPE, Category.MOVEMENT,
                          Category.CONVERT, Category.CREATION})


class NoFiniteCut(Exception):
    """No finite set of saved values separates the backward from what may not be recomputed."""


def nbytes(n: fx.Node) -> int | None:
    """Bytes of a node's tensor result; None when it is not one tensor (cannot be saved as is)."""
    meta = n.meta.get(META_KEY)
    if not isinstance(meta, TensorMeta):
        return None
    return size_hint(meta.numel()) * meta.dtype.itemsize  # a symbolic size at its example value


def ban_reason(n: fx.Node) -> str | None:
    """Why a forward node may not be recomputed in the backward (None: it may)."""
    if n.op == "placeholder":
        return "a graph input"
    if n.op == "get_attr":
        return None  # a constant: the backward reads it again for free
    target = n.target
    if not isinstance(target, Prim):
        return None if target is operator.getitem else f"not a prim ({target})"
    if target.extra.get("impure"):
        return "impure (a runtime check or a fresh seed)"
    if target.category in RECOMPUTABLE:
        return None
    if target.category is Category.REDUCTION:
        out, inp = nbytes(n), nbytes(n.args[0]) if isinstance(n.args[0], fx.Node) else None
        if out is not None and inp is not None and out * REDUCTION_RATIO >= inp:
            return None
        return "a reduction (its output is small: saved)"
    return f"{target.category.value} prim"


def distances_to_backward(nodes, on_tangents: set, read_by_backward: set) -> dict:
    """For each forward node, the fewest data edges to a backward node (math.inf: none)."""
    dist: dict[fx.Node, float] = {}
    for n in reversed(nodes):
        if n in on_tangents:
            continue
        d = 1 if n in read_by_backward else math.inf
        for u in n.users:
            if u not in on_tangents and u in dist:
                d = min(d, dist[u] + 1)
        dist[n] = d
    return dist


def min_cut_saved(nodes, *, required_fw: set, on_tangents: set, bwd_outs: set) -> tuple[list, dict]:
    """The forward nodes to save (joint order), and why each banned node may not be recomputed."""
    read_by_backward = {n for n in nodes if n not in on_tangents
                        and (n in bwd_outs or any(u in on_tangents for u in n.users))}
    dist = distances_to_backward(nodes, on_tangents, read_by_backward)
    banned: dict[fx.Node, str] = {}
    for n in nodes:
        if n in on_tangents or dist[n] == math.inf:
            continue
        reason = ban_reason(n) if n in required_fw or n.op == "placeholder" else None
        if reason is None and n in required_fw and dist[n] > MAX_RECOMPUTE_DISTANCE:
            reason = f"{dist[n]} data edges from the backward"
        if reason is not None:
            banned[n] = reason
    relevant = _relevant(nodes, on_tangents, read_by_backward, banned)
    scale = _TIE_BREAK_CAP * (len(relevant) + 1)  # bytes first; tie-breaks sum to less than one byte
    graph = nx.DiGraph()
    for n in relevant:
        size = nbytes(n)
        capacity = {} if size is None else {"capacity": size * scale + _tie_break(n, dist[n])}  # none: infinite
        graph.add_edge((n, "in"), (n, "out"), **capacity)
        for u in n.users:
            if u in relevant and u not in banned:
                graph.add_edge((n, "out"), (u, "in"))
    saved = []
    for component in nx.weakly_connected_components(graph):
        saved += _cut(graph.subgraph(component), banned, read_by_backward)
    order = {n: i for i, n in enumerate(nodes)}
    return sorted(saved, key=order.__getitem__), banned


def _relevant(nodes, on_tangents, read_by_backward, banned) -> set:
    """Forward nodes the cut can depend on: read by the backward, or feeding one that may be
    recomputed. A node whose every path to the backward crosses a banned node stays in the forward
    at no cost, so it is left out of the flow network (which then is small islands between matmuls
    and reductions rather than the whole graph)."""
    relevant = set()
    for n in reversed(nodes):
        if n not in on_tangents and (n in read_by_backward or
                                     any(u in relevant and u not in banned for u in n.users)):
            relevant.add(n)
    return relevant


def _cut(graph, banned, read_by_backward) -> list:
    """Minimum cut of one weakly connected piece of the flow network: the nodes it saves."""
    pinned = [v for v in graph if v[1] == "in" and v[0] in banned]
    needed = [v for v in graph if v[1] == "out" and v[0] in read_by_backward]
    if not pinned or not needed:  # nothing must stay in the forward (all recomputable), or nothing read
        return []
    flow = nx.DiGraph(graph)
    flow.add_edges_from(("source", v) for v in pinned)  # no capacity: infinite
    flow.add_edges_from((v, "sink") for v in needed)
    try:
        _, (reachable, _) = nx.minimum_cut(flow, "source", "sink")
    except nx.NetworkXUnbounded as e:
        raise NoFiniteCut(str(e)) from e
    return [v[0] for v in reachable if v[1] == "in" and (v[0], "out") not in reachable]


def _tie_break(n: fx.Node, dist) -> int:
    """Among cuts of equal bytes, save graph inputs (alive anyway, nothing to write), then the values
    nearest the backward (the least recomputation)."""
    return 0 if n.op == "placeholder" else min(dist, _TIE_BREAK_CAP)
