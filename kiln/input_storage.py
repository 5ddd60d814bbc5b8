"""Which graph inputs share memory with an input the graph writes, checked on every call.

Functionalization turns a write into an input into a new value copied back after the graph; reads
of other inputs are compiled as reads of their own memory. That is right only while the memory
relationships stay those of the example inputs: an input that shared storage with a written one at
compile time must still share it (at the same storage offset), and an input that did not must still
not. `capture` guards this itself (STORAGES_APART, SAME_STORAGE); TorchDynamo does not for a
back end like Kiln's (AOTAutograd, which Kiln does not use, is what handles it for inductor), so
`compile_fx` checks it per call for graphs that write an input: one `untyped_storage().data_ptr()`
per tensor input, nothing for graphs that write none.
"""
from __future__ import annotations

import operator

import torch


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata  # one StorageImpl per storage, fake tensors included


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class StorageCheck:
    """`check(inputs)`: the written inputs' memory is shared exactly as it was at compile time."""

    def __init__(self, example_inputs, written: list[int]):
        tensors = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.Tensor)]
        groups: dict[int, list[int]] = {}
        for i in tensors:
            groups.setdefault(_storage_key(example_inputs[i]), []).append(i)
        written_groups = {_storage_key(example_inputs[i]): groups[_storage_key(example_inputs[i])] for i in written}
        self.groups = [tuple(g) for g in written_groups.values()]  # each: inputs sharing one written storage
        self.firsts = tuple(g[0] for g in self.groups)
        self.offsets = tuple((i, int(example_inputs[i].storage_offset())) for g in self.groups if len(g) > 1 for i in g)
        self.followers = tuple((g[0], i) for g in self.groups for i in g[1:])
        in_groups = {i for g in self.groups for i in g}
        self.other_indices = tuple(i for i in tensors if i not in in_groups)
        # one C call fetches them all (a tuple even for one)
        self.others = (lambda inputs, i=self.other_indices[0]: (inputs[i],)) if len(self.other_indices) == 1 \
            else operator.itemgetter(*self.other_indices) if self.other_indices else None

    def __call__(self, inputs) -> bool:
        written = set()
        for i in self.firsts:
            p = inputs[i].untyped_storage().data_ptr()
            if p:  # no memory (an empty tensor) shares nothing
                if p in written:
                    return False
                written.add(p)
        for first, i in self.followers:
            if inputs[i].untyped_storage().data_ptr() != inputs[first].untyped_storage().data_ptr():
                return False
        for i, offset in self.offsets:
            if inputs[i].storage_offset() != offset:
                return False
        if not written or not self.others:
            return True
        others = self.others(inputs)
        return written.isdisjoint([t.untyped_storage().data_ptr() for t in others])

    def explain(self, inputs) -> str:
        """Why `check` failed, naming inputs by position."""
        for first, i in self.followers:
            if _ptr(inputs[i]) != _ptr(inputs[first]):
                return f"graph input {i} no longer shares memory with input {first}, which the graph writes"
        for i, offset in self.offsets:
            if inputs[i].storage_offset() != offset:
                return f"graph input {i} now starts at storage offset {inputs[i].storage_offset()}, not {offset}"
        owner: dict[int, int] = {}
        for i in self.firsts + self.other_indices:
            p = _ptr(inputs[i])
            if p and p in owner and (i in self.firsts or owner[p] in self.firsts):
                return f"graph inputs {owner[p]} and {i} share memory, and the graph writes one of them"
            owner.setdefault(p, i)
        return "graph inputs share memory differently from the example inputs"


def storage_check(example_inputs, written: list[int]) -> StorageCheck | None:
    """None when the graph writes no input (nothing to check)."""
    return StorageCheck(example_inputs, written) if written else None
