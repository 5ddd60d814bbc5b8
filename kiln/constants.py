"""Tensors a graph holds as constants (get_attr) and writes in place become graph inputs.

TorchDynamo keeps some tensors on the graph module instead of passing them in: the optimizer state
of a compiled `optimizer.step()` (Adam's `step` counters, `exp_avg`, `exp_avg_sq`, ...). A write to
one must land in that very tensor, as eager's does, while a compiled graph's kernels write only
their outputs and the graph's inputs. So the attributes the graph writes (found by functionalization:
`prims.WrittenConstants`) become trailing placeholders, and the callable passes those tensors on
every call: their writes are input writes, copied back in place like any other.
"""
from __future__ import annotations

import torch
import torch.fx as fx


def lift_written(gm: fx.GraphModule, written: list) -> tuple[fx.GraphModule, list] | None:
    """gm with each get_attr node whose tensor shares memory with a written one made a trailing
    placeholder, and those tensors in placeholder order; None when no get_attr node holds them."""
    keys = {_storage_key(t) for t in written}
    lifted = [n for n in gm.graph.nodes if n.op == "get_attr" and _is_written(_attr(gm, n.target), written, keys)]
    if not lifted:
        return None
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for n in placeholders:
        env[n] = g.node_copy(n)
    for n in lifted:
        env[n] = g.placeholder(f"const_{n.name}")
        env[n].meta.update(n.meta)
    for n in gm.graph.nodes:
        if n not in env:
            env[n] = g.node_copy(n, lambda a: env[a])
    return fx.GraphModule(gm, g), [_attr(gm, n.target) for n in lifted]


def _attr(gm, target: str):
    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _is_written(value, written, keys) -> bool:
    if not isinstance(value, torch.Tensor):
        return False
    return any(value is t for t in written) or _storage_key(value) in keys


def _storage_key(t: torch.Tensor):
    storage = t.untyped_storage()
    return (t.device, storage.data_ptr()) if storage.nbytes() else (id(t),)
