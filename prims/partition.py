"""Split a joint (forward + backward) graph into a forward graph and a backward graph.

    joint:    placeholders = primals (the first `num_primals`), then tangents
              output       = a flat tuple; positions in `grad_outputs` are gradients, the rest forward
    forward:  placeholders = the primals (same names, same order)
              output       = (*forward outputs in the joint's order, *saved)
    backward: placeholders = saved (same order as the forward's trailing outputs), then the tangents
              output       = (*gradient outputs in the joint's order)

Which values are saved (and which the backward recomputes instead) is the partition's one decision.
This default partition saves every forward value the backward reads and recomputes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch.fx as fx

from .builder import META_KEY
from .meta import TensorMeta


@dataclass(frozen=True)
class Partition:
    forward: fx.GraphModule
    backward: fx.GraphModule
    saved: tuple[str, ...]        # joint node names the forward saves for the backward
    recomputed: tuple[str, ...]   # joint node names the backward computes again from saved values
    saved_bytes: int

    def __repr__(self):
        return (f"Partition(saved={len(self.saved)} values, {self.saved_bytes} bytes, "
                f"recomputed={len(self.recomputed)} nodes)")


def partition(joint: fx.GraphModule, *, num_primals: int, grad_outputs: Sequence[int]) -> Partition:
    placeholders = [n for n in joint.graph.nodes if n.op == "placeholder"]
    primals, tangents = placeholders[:num_primals], placeholders[num_primals:]
    outputs = list(_output_args(joint))
    grad_set = set(grad_outputs)
    fwd_outs = [o for i, o in enumerate(outputs) if i not in grad_set]
    bwd_outs = [outputs[i] for i in sorted(grad_set)]
    on_tangents = _descendants(joint.graph, tangents)
    # Everything that does not read a tangent runs in the forward: nothing is recomputed.
    forward_nodes = [n for n in joint.graph.nodes if n.op not in ("placeholder", "output") and n not in on_tangents]
    backward_nodes = [n for n in joint.graph.nodes if n in on_tangents and n.op != "placeholder" and n.op != "output"]
    in_forward = set(primals) | set(forward_nodes)
    saved = _saved(backward_nodes, bwd_outs, in_forward)
    forward = _build(joint, primals, forward_nodes, [*fwd_outs, *saved])
    backward = _build(joint, [*saved, *tangents], backward_nodes, bwd_outs)
    return Partition(forward, backward, tuple(n.name for n in saved), (), sum(_nbytes(n) for n in saved))


def _output_args(gm: fx.GraphModule):
    out = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
    return out.args[0] if isinstance(out.args[0], (tuple, list)) else (out.args[0],)


def _descendants(graph: fx.Graph, roots) -> set:
    seen = set(roots)
    for n in graph.nodes:  # topological order: one pass
        if n not in seen and any(a in seen for a in n.all_input_nodes):
            seen.add(n)
    return seen


def _saved(backward_nodes, bwd_outs, in_forward) -> list:
    """Forward values the backward reads, in the joint's order."""
    read = {}
    for n in backward_nodes:
        for a in n.all_input_nodes:
            if a in in_forward:
                read[a] = None
    for o in bwd_outs:
        if isinstance(o, fx.Node) and o in in_forward:
            read[o] = None
    order = {n: i for i, n in enumerate(next(iter(in_forward)).graph.nodes)} if read else {}
    return sorted(read, key=order.__getitem__)


def _build(joint, inputs, nodes, outputs) -> fx.GraphModule:
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in inputs:
        env[n] = graph.placeholder(n.name)
        env[n].meta = dict(n.meta)
    for n in nodes:
        env[n] = graph.node_copy(n, env.__getitem__)
    graph.output(tuple(env[o] if isinstance(o, fx.Node) else o for o in outputs))
    graph.eliminate_dead_code()
    return fx.GraphModule(joint, graph)


def _nbytes(n: fx.Node) -> int:
    meta = n.meta.get(META_KEY)
    if not isinstance(meta, TensorMeta):
        return 0
    return meta.numel() * meta.dtype.itemsize
