"""Writes that functional values cannot express: the in-place op runs as is, on a copy of its storage.

Eager writes memory, not values. Through a view with no inverse (a broadcasting `expand`, an
overlapping `unfold`) or into a tensor whose elements share memory (an expanded input), several
elements of the written tensor are one memory location: what lands there is whatever the op wrote
last, and ops that refuse such writes (`add_`, `copy_`: eager's internal-overlap check) raise.
`WriteOnCopy` is the op-level fallback for such a write: it lays the storage's root out as eager
does (its sizes and strides, stride-0 dims included), replays the view chain from the root with
eager's own view ops, runs the in-place op as is on that view, and returns the root's new value.
Functionalization then treats it as any new value of a written root: later reads replay their views
on it, and a written input gets it copied back.
"""
from __future__ import annotations

from typing import Optional

import torch

from .eager_strides import preserved_strides
from .symbolic import is_symbolic


def one_location(shape, strides) -> tuple:
    """Index taking one element of each stride-0 dim: the memory a broadcast layout really has."""
    return tuple(slice(0, 1) if st == 0 and n > 1 else slice(None) for n, st in zip(shape, strides))


def broadcast_only_overlap(shape, strides) -> bool:
    """Whether the layout is non-overlapping once each stride-0 dim is taken at one element."""
    reach = 0
    for stride, size in sorted((st, n) for st, n in zip(strides, shape) if n > 1 and st != 0):
        if stride <= reach:
            return False
        reach += stride * (size - 1)
    return True


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """`dst.copy_(src)`, also into a tensor whose stride-0 dims share memory (which `copy_` refuses):
    through one element of each; `src` holds the same value along them (it was read from such memory)."""
    one = one_location(dst.shape, dst.stride())
    dst[one].copy_(src[one])


class _Slot:
    """Where the op's k-th tensor argument goes (tensors travel as the custom op's list)."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k

    def __repr__(self):
        return f"tensor{self.k}"


WRITTEN = _Slot(-1)  # the written argument: the view of the copied root


class WriteOnCopy:
    """`op` applied in place to `chain` (view steps) of a copy of a root laid out as eager's root
    (`shape`, `strides`); `args`/`kwargs` are the op's arguments with `WRITTEN` and `_Slot`s for its
    tensors. Returns the root's new value: in eager's strides when those are dense, else contiguous
    (`result_strides`)."""

    def __init__(self, op, chain: tuple, shape, strides, args: tuple, kwargs: dict):
        self.op, self.chain, self.shape, self.strides = op, tuple(chain), tuple(shape), tuple(strides)
        self.args, self.kwargs = args, kwargs
        dense = preserved_strides(self.shape, self.strides) == self.strides
        self.result_strides = self.strides if dense else preserved_strides(self.shape, self.strides)
        steps = "".join(f".{step!r}" for step in self.chain)
        self.key = f"{op}(root{steps}; {self.args!r}, {self.kwargs!r}) on size {list(self.shape)}, " \
                   f"stride {list(self.strides)}"

    def __call__(self, root: torch.Tensor, tensors) -> torch.Tensor:
        shape, strides, result_strides = self.shape, self.strides, self.result_strides
        if any(is_symbolic(v) for v in (*shape, *strides)):  # a size-generic build: the root's own layout
            shape, strides = tuple(root.shape), tuple(root.stride())
            result_strides = strides if preserved_strides(shape, strides) == strides else preserved_strides(shape, strides)
        base = torch.empty_strided(shape, strides, dtype=root.dtype, device=root.device)
        one = one_location(shape, strides)
        base[one].copy_(root[one])
        view = base
        for step in self.chain:  # eager's view ops, as eager ran them: views of `base`, never copies
            view = step.op(view, *step.args, **step.kwargs)

        def fill(x):
            if isinstance(x, _Slot):
                return view if x is WRITTEN else tensors[x.k]
            if isinstance(x, (list, tuple)):
                return type(x)(fill(a) for a in x)
            return x

        self.op(*fill(self.args), **{k: fill(v) for k, v in self.kwargs.items()})
        if base.stride() == result_strides:
            return base
        return torch.empty_strided(shape, result_strides, dtype=base.dtype, device=base.device).copy_(base)


_PLANS: dict[str, WriteOnCopy] = {}  # plan key -> plan; the graph names its plan by key


def plan(op, chain, shape, strides, args, kwargs, is_tensor) -> tuple[WriteOnCopy, list]:
    """The plan for `op(*args, **kwargs)` writing `WRITTEN`, and the tensors (`is_tensor`) it takes
    from the graph, in slot order."""
    tensors = []

    def template(x):
        if x is WRITTEN:
            return x
        if is_tensor(x):
            tensors.append(x)
            return _Slot(len(tensors) - 1)
        if isinstance(x, (list, tuple)):
            return type(x)(template(a) for a in x)
        return x

    p = WriteOnCopy(op, chain, shape, strides, template(tuple(args)), {k: template(v) for k, v in kwargs.items()})
    return _PLANS.setdefault(p.key, p), tensors


@torch.library.custom_op("kiln::write_on_copy", mutates_args=())
def write_on_copy(root: torch.Tensor, tensors: list[Optional[torch.Tensor]], plan: str) -> torch.Tensor:
    """Run the plan named `plan` (see WriteOnCopy): the root's new value."""
    return _PLANS[plan](root, tensors)


@write_on_copy.register_fake
def _(root, tensors, plan):
    p = _PLANS[plan]
    return torch.empty_strided(p.shape, p.result_strides, dtype=root.dtype, device=root.device)


WRITE_ON_COPY = torch.ops.kiln.write_on_copy.default
