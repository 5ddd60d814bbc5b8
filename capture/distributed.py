"""DistributedDataParallel under kiln.compile: graphs split at DDP's gradient buckets.

DDP's own forward runs as it is (its reducer, buckets and hooks are torch.distributed's); the module
it wraps is compiled. A compiled graph's backward is one autograd node: every parameter's gradient
would be ready only when the whole backward ends, and DDP could not start an all-reduce until then.
So, as TorchDynamo's DDPOptimizer does, each captured graph is split where DDP's buckets fill up,
walking the graph backwards (the order gradients are produced), and each piece is compiled on its
own: a bucket's gradients are all-reduced while the backward of the pieces before it still runs.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.fx as fx
from torch.fx.passes.split_module import split_module

from kiln import config
from kiln.logs import get_logger

from .backends import lookup_backend

ddp_log = get_logger("ddp")


def is_ddp(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.parallel.DistributedDataParallel)


@dataclass
class Bucket:
    """Nodes (in reverse order) whose parameters' gradients DDP reduces together."""
    params: list[str] = field(default_factory=list)  # placeholder names
    nbytes: int = 0
    nodes: list[fx.Node] = field(default_factory=list)

    def has_external_user(self) -> bool:
        """Some node is read outside the bucket: the piece it becomes has an output."""
        inside = set(self.nodes)
        return any(user not in inside for node in self.nodes for user in node.users)


@dataclass
class DDPSplit:
    """How one captured graph was split: buckets in forward order, each with its compiled piece."""
    graph: weakref.ref
    buckets: list[Bucket]
    bucket_cap: int
    first_bucket_cap: int
    pieces: list[fx.GraphModule] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"split at DDP's buckets into {len(self.buckets)} graph(s) "
                 f"(bucket cap {self.bucket_cap} bytes, first bucket {self.first_bucket_cap} bytes; "
                 "the last graph's gradients are reduced first)"]
        for i, b in enumerate(self.buckets):
            ops = sum(n.op in ("call_function", "call_method", "call_module") for n in b.nodes)
            lines.append(f"  graph {i}: {len(b.params)} parameter(s), {b.nbytes} bytes, {ops} op(s): "
                         + (", ".join(b.params) or "-"))
        return "\n".join(lines)


_SPLITS: list[DDPSplit] = []


def ddp_splits() -> list[DDPSplit]:
    return [s for s in _SPLITS if s.graph() is not None]


def clear() -> None:
    _SPLITS.clear()


def bucket_caps(ddp) -> tuple[int, int]:
    """DDP's bucket size and its smaller first bucket (the default config starts one all-reduce early)."""
    cap = ddp.bucket_bytes_cap
    first = torch.distributed._DEFAULT_FIRST_BUCKET_BYTES if getattr(ddp, "bucket_bytes_cap_default", False) else cap
    return cap, min(first, cap)


def reduced_parameters(ddp) -> set[int]:
    """ids of the parameters DDP all-reduces (trainable, not ignored)."""
    ignored = set(getattr(ddp, "parameters_to_ignore", ()))
    return {id(p) for name, p in ddp.module.named_parameters()
            if p.requires_grad and name not in ignored and not getattr(p, "_ddp_ignored", False)}


def assign_buckets(gm: fx.GraphModule, example_inputs, reduced: set[int], cap: int, first_cap: int) -> list[Bucket]:
    """Buckets in forward order. Walking backwards, a parameter joins the bucket open at its last
    use; a full bucket closes once it has an output, so every piece returns something."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    param_bytes = {node: x.numel() * x.element_size() for node, x in zip(placeholders, example_inputs)
                   if isinstance(x, torch.Tensor) and id(x) in reduced}
    buckets = [Bucket()]
    counted: set[fx.Node] = set()
    for node in reversed(gm.graph.nodes):
        if node.op in ("placeholder", "output"):
            continue
        open_cap = first_cap if len(buckets) == 1 else cap
        if buckets[0].nbytes >= open_cap and buckets[0].has_external_user():
            buckets.insert(0, Bucket())
        for arg in node.all_input_nodes:
            if arg in param_bytes and arg not in counted:
                counted.add(arg)
                buckets[0].params.append(arg.name)
                buckets[0].nbytes += param_bytes[arg]
        buckets[0].nodes.append(node)
    if len(buckets) > 1 and not buckets[0].params:  # a preamble with no parameters: no bucket of its own
        buckets[1].nodes.extend(buckets.pop(0).nodes)
    return buckets


class LazyPiece(torch.nn.Module):
    """One bucket's graph, compiled by the backend on its first call (with that call's inputs)."""

    def __init__(self, gm: fx.GraphModule, backend: Callable, record: DDPSplit):
        super().__init__()
        output = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
        self.single = not isinstance(output.args[0], (tuple, list))
        if self.single:  # backends return what the graph returns; Kiln's contract is a tuple
            output.args = ((output.args[0],),)
            gm.recompile()
        self.gm = gm
        self.backend = backend
        self.record = record
        self.compiled = None

    def forward(self, *args):
        if self.compiled is None:
            self.compiled = self.backend(self.gm, list(args))
            self.record.pieces.append(self.gm)
        result = self.compiled(*args)
        return result[0] if self.single else result


class BucketedBackend:
    """A backend that splits each graph at `ddp`'s buckets and hands each piece to `backend`."""

    def __init__(self, ddp, backend):
        self.backend = backend
        self.cap, self.first_cap = bucket_caps(ddp)
        self.reduced = reduced_parameters(ddp)

    def __call__(self, gm: fx.GraphModule, example_inputs) -> Callable:
        backend = lookup_backend(self.backend)
        buckets = assign_buckets(gm, example_inputs, self.reduced, self.cap, self.first_cap)
        record = DDPSplit(weakref.ref(gm), buckets, self.cap, self.first_cap)
        _SPLITS.append(record)
        ddp_log.debug("%s", record)
        if len(buckets) == 1:
            record.pieces.append(gm)
            return backend(gm, example_inputs)
        partition = {node: i for i, b in enumerate(buckets) for node in b.nodes}
        split = split_module(gm, gm, lambda node: partition[node], keep_original_order=True)
        for name, piece in list(split.named_children()):
            setattr(split, name, LazyPiece(piece, backend, record))
        if config.dump_dir:
            root = Path(config.dump_dir)
            root.mkdir(parents=True, exist_ok=True)
            (root / f"ddp_split_{len(_SPLITS) - 1:03d}.txt").write_text(
                f"{record}\n\n{split.print_readable(print_output=False)}")
        return split
