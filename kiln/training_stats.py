"""Saved-activation accounting for training: the bytes eager autograd keeps from the forward for the
backward, to set against a Kiln partition's `saved_bytes` (bench/training.py, tests, `kiln dump`)."""
from __future__ import annotations

import torch


def eager_saved_bytes(fn, *args, **kwargs) -> int:
    """Bytes of the tensors eager autograd saves while `fn(*args, **kwargs)` runs (grad mode on),
    measured with torch.autograd.graph.saved_tensors_hooks: each distinct storage counted once, whole
    (a saved view keeps its whole storage alive), parameters and inputs included, as a partition's
    saved graph inputs are."""
    storages: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        key = (t.device, s.data_ptr()) if s.data_ptr() else ("empty", id(s))
        storages[key] = max(storages.get(key, 0), s.nbytes())
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args, **kwargs)
    return sum(storages.values())
