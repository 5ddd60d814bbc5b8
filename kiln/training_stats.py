"""Saved-activation accounting for training: the bytes eager autograd keeps from the forward for the
backward, to set against a Kiln partition's `saved_bytes` (bench/training.py, tests, `kiln dump`)."""
from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import FakeTensorMode


def eager_saved_bytes(fn, *args, **kwargs) -> int:
    """Bytes of the tensors eager autograd saves while `fn(*args, **kwargs)` runs (grad mode on),
    measured with torch.autograd.graph.saved_tensors_hooks: each distinct storage counted once, whole
    (a saved view keeps its whole storage alive), parameters and inputs included, as a partition's
    saved graph inputs are. Works on real and on fake tensors."""
    storages: dict[int, torch.UntypedStorage] = {}  # kept alive while measuring: no key is reused

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        storages.setdefault(s._cdata, s)
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args, **kwargs)
    return sum(s.nbytes() for s in storages.values())


def eager_saved_bytes_on_fakes(module: torch.nn.Module, example_inputs) -> int:
    """eager_saved_bytes of `module(*example_inputs)` run on fake tensors, its parameters and buffers
    swapped for fakes too: no data is computed and no real tensor (running stats) is written, so a
    compiler can report it at compile time (`kiln dump`)."""
    mode = FakeTensorMode(allow_non_fake_inputs=True)

    def fake(x):
        return mode.from_tensor(x, static_shapes=True) if isinstance(x, torch.Tensor) else x

    state = {name: fake(t) for name, t in [*module.named_parameters(), *module.named_buffers()]}
    inputs = tuple(fake(x) for x in example_inputs)
    with mode:
        return eager_saved_bytes(torch.func.functional_call, module, state, inputs)
