"""Split a joint (forward + backward) graph into a forward graph and a backward graph.

    joint:    placeholders = primals (the first `num_primals`), then tangents
              output       = a flat tuple; positions in `grad_outputs` are gradients, the rest forward
    forward:  placeholders = the primals (same names, same order)
              output       = (*forward outputs in the joint's order, *saved)
    backward: placeholders = saved (same order as the forward's trailing outputs), then the tangents
              output       = (*gradient outputs in the joint's order)

Which values are saved (and which the backward recomputes instead) is the partition's one decision:
  "mincut"    (default) the fewest saved bytes, recomputing cheap forward work in the backward (mincut.py)
  "save_all"  save every forward value the backward reads; recompute nothing (for debugging, comparison)
set by `strategy=` or KILN_PARTITION (kiln.config.partition). A min-cut that finds no finite cut (it
should not happen) falls back to save_all, logged.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch.fx as fx

from kiln import config, logs

from .mincut import NoFiniteCut, min_cut_saved, nbytes
from .prim import Category, Prim

STRATEGIES = ("mincut", "save_all")
_log = logs.get_logger("partition")


@dataclass(frozen=True)
class Partition:
    forward: fx.GraphModule
    backward: fx.GraphModule
    saved: tuple[str, ...]        # joint node names the forward saves for the backward
    recomputed: tuple[str, ...]   # joint node names the forward computes and the backward computes again
    saved_bytes: int
    strategy: str = "save_all"
    save_all_bytes: int = 0       # what the default partition (save_all) would save, for comparison
    seconds: float = 0.0          # time partition() took
    banned: dict = field(default_factory=dict, repr=False, compare=False)  # node name -> why not recomputed
    joint: fx.GraphModule | None = field(default=None, repr=False, compare=False)

    def __repr__(self):
        return (f"Partition({self.strategy}: saved={len(self.saved)} values, {self.saved_bytes} bytes, "
                f"recomputed={len(self.recomputed)} nodes)")

    def __str__(self):
        return self.text()

    def text(self, eager_saved_bytes: int | None = None) -> str:
        """What is saved (with sizes), what is recomputed, bytes against save_all and eager's saved tensors."""
        from .partition_text import partition_text
        return partition_text(self, eager_saved_bytes)

    def dump(self, eager_saved_bytes: int | None = None) -> str:
        """The joint graph, the partition, then the forward and backward graphs: one text for `kiln dump`."""
        from .partition_text import partition_dump
        return partition_dump(self, eager_saved_bytes)


def partition(joint: fx.GraphModule, *, num_primals: int, grad_outputs: Sequence[int],
              strategy: str | None = None) -> Partition:
    start = time.perf_counter()
    strategy = strategy or config.partition
    if strategy not in STRATEGIES:
        raise ValueError(f"partition strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    nodes = [n for n in joint.graph.nodes if n.op != "output"]
    placeholders = [n for n in nodes if n.op == "placeholder"]
    primals, tangents = placeholders[:num_primals], placeholders[num_primals:]
    outputs = list(_output_args(joint))
    grad_set = set(grad_outputs)
    fwd_outs = [o for i, o in enumerate(outputs) if i not in grad_set]
    bwd_outs = [outputs[i] for i in sorted(grad_set)]
    on_tangents = _descendants(nodes, tangents)
    order = {n: i for i, n in enumerate(nodes)}
    default = _read_by_backward(nodes, on_tangents, bwd_outs, order)
    saved, banned = default, {}
    fw_roots = [o for o in fwd_outs if isinstance(o, fx.Node)] + _impure(nodes, on_tangents, False)
    if strategy == "mincut":
        required_fw = _ancestors(fw_roots)
        try:
            saved, banned = min_cut_saved(nodes, required_fw=required_fw, on_tangents=on_tangents,
                                          bwd_outs={o for o in bwd_outs if isinstance(o, fx.Node)})
            _check_cut(saved, banned, bwd_outs, tangents, on_tangents, nodes)
        except NoFiniteCut as e:
            _log.debug("min-cut partition failed (%s); saving every value the backward reads", e)
            strategy, saved, banned = "save_all", default, {}
    saved_set = set(saved)
    fw_nodes = _ancestors(fw_roots + saved, stop=set(primals))
    bw_nodes = _ancestors([o for o in bwd_outs if isinstance(o, fx.Node)] + _impure(nodes, on_tangents, True),
                          stop=saved_set | set(tangents))
    forward_list = [n for n in nodes if n in fw_nodes and n.op != "placeholder"]
    backward_list = [n for n in nodes if n in bw_nodes and n not in saved_set and n.op != "placeholder"]
    forward = _build(joint, primals, forward_list, [*fwd_outs, *saved])
    backward = _build(joint, [*saved, *tangents], backward_list, bwd_outs)
    recomputed = tuple(n.name for n in backward_list if n in fw_nodes and n.op == "call_function")
    part = Partition(forward, backward, tuple(n.name for n in saved), recomputed, _bytes(saved), strategy,
                     _bytes(default), time.perf_counter() - start, {n.name: r for n, r in banned.items()}, joint)
    _log.debug("%s", part)  # the Partition itself is the record's argument: bench/training.py collects them
    return part


def _output_args(gm: fx.GraphModule):
    out = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
    return out.args[0] if isinstance(out.args[0], (tuple, list)) else (out.args[0],)


def _descendants(nodes, roots) -> set:
    seen = set(roots)
    for n in nodes:  # topological order: one pass
        if n not in seen and any(a in seen for a in n.all_input_nodes):
            seen.add(n)
    return seen


def _ancestors(roots, stop=frozenset()) -> set:
    """`roots` and every node they read, not looking past `stop` (which is included when reached)."""
    seen, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n not in stop:
            stack.extend(n.all_input_nodes)
    return seen


def _impure(nodes, on_tangents, backward: bool) -> list:
    """Runtime checks kept even when nothing reads them, in the half of the joint graph they belong to."""
    return [n for n in nodes if isinstance(n.target, Prim) and n.target.extra.get("impure")
            and (n in on_tangents) == backward and n.target.category is not Category.RANDOM]


def _read_by_backward(nodes, on_tangents, bwd_outs, order) -> list:
    """The default partition's saved values: forward values the backward reads, in the joint's order."""
    read = {a for n in nodes if n in on_tangents for a in n.all_input_nodes if a not in on_tangents}
    read |= {o for o in bwd_outs if isinstance(o, fx.Node) and o not in on_tangents}
    return sorted(read, key=order.__getitem__)


def _check_cut(saved, banned, bwd_outs, tangents, on_tangents, nodes) -> None:
    """The backward reaches, from the saved values and the tangents, only what it may compute."""
    reached = _ancestors([o for o in bwd_outs if isinstance(o, fx.Node)] + _impure(nodes, on_tangents, True),
                         stop=set(saved) | set(tangents))
    for n in reached:
        if n not in on_tangents and n not in saved and (n in banned or n.op == "placeholder"):
            raise NoFiniteCut(f"the backward would recompute {n.name} ({banned.get(n, 'an input')})")


def _build(joint, inputs, nodes, outputs) -> fx.GraphModule:
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in inputs:
        env[n] = graph.placeholder(n.name)
        env[n].meta = dict(n.meta)
    for n in nodes:
        env[n] = graph.node_copy(n, env.__getitem__)
    graph.output(tuple(env[o] if isinstance(o, fx.Node) else o for o in outputs))
    return fx.GraphModule(joint, graph)


def _bytes(saved) -> int:
    return sum(nbytes(n) or 0 for n in saved)
