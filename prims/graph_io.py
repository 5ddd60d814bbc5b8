"""What a graph's outputs mean to its caller: eager's outputs, their aliasing, and input mutations.

    gm.meta[OUTPUTS_KEY]    one OutputInfo per graph output. Outputs with role "user" come first and
                            are what the caller gets; after them come the new values of mutated inputs
                            (role "mutation") and bases that aliased outputs view (role "base").
    gm.meta[MUTATIONS_KEY]  InputMutation(input_index, output_index, layout, storage), in program order:
                            after the graph runs, that input takes that output's value in place
                            (`copy_`); inputs whose metadata changed (t_, unsqueeze_) are then
                            restrided (`as_strided_`) once every output view is made.

A user output with `view_of` is not returned as computed: the caller gets a view (as_strided, with
eager's sizes, strides and storage offset) of an input, a constant, or another graph output, so it
shares storage exactly as eager's output does. `call_with_effects` is the reference for all this;
the generated wrapper (codegen/wrapper.py) does the same in straight-line code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx

from .builder import ARG_METAS_KEY
from .eager_strides import preserved_strides
from .write_on_copy import copy_into

OUTPUTS_KEY = "kiln_outputs"
MUTATIONS_KEY = "kiln_mutations"
FUNCTIONAL_KEY = "kiln_functional"  # set once a graph is functionalized (no in-place ops left)


@dataclass(frozen=True)
class ViewOf:
    """Output = as_strided(base, shape, strides, base.storage_offset() + offset), as in eager; with
    `dtype` (a view with another dtype, `x.view(torch.int16)`), the base's bytes read as that dtype,
    the offset counted in its elements from the base's first byte (`view_of_storage`)."""
    base: str  # "input" | "output" | "constant"
    index: int | str  # input position, graph output position, or constant attribute name
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int  # storage offset relative to the base's
    dtype: torch.dtype | None = None  # None: the base's

    def __repr__(self):
        dtype = "" if self.dtype is None else f" as {str(self.dtype).replace('torch.', '')}"
        return (f"view of {self.base} {self.index}{dtype}: size {list(self.shape)}, stride {list(self.strides)}, "
                f"offset +{self.offset}")


def view_of_storage(base: torch.Tensor, shape, strides, offset: int, dtype=None) -> torch.Tensor:
    """Eager's view of `base`'s storage (see ViewOf): as_strided, or for another dtype, the same bytes
    reinterpreted, sharing the storage as eager's `view(dtype)` does."""
    if dtype is None or dtype == base.dtype:
        return torch.as_strided(base, shape, strides, base.storage_offset() + offset)
    start = base.storage_offset() * base.element_size() // dtype.itemsize + offset
    return torch.empty(0, dtype=dtype, device=base.device).set_(base.untyped_storage(), start, shape, strides)


@dataclass(frozen=True)
class InputMutation:
    """Input `input_index` takes the value of graph output `output_index` (if any), copied in place;
    then, if `layout` is set ((shape, strides, storage offset): t_, unsqueeze_, ...), it is restrided;
    with `storage` (`x.set_(y)`), it becomes that view of another output's storage (after every other
    output is made: views of its old storage are views of what it was)."""
    input_index: int
    output_index: int | None
    layout: tuple | None = None
    storage: ViewOf | None = None

    def __repr__(self):
        parts = [] if self.output_index is None else [f"<- output {self.output_index}"]
        if self.layout is not None:
            parts.append("restrided to size {}, stride {}, offset {}".format(*map(list, self.layout[:2]), self.layout[2]))
        if self.storage is not None:
            parts.append(f"set_ to the {self.storage!r}")
        return f"input {self.input_index} " + ", then ".join(parts)


class OutputInfo:
    """One graph output: eager's metadata, which input it *is* (if any), which earlier output it is the
    very same tensor as (if any), what it views (if it aliases), and its role."""

    __slots__ = ("meta", "input_index", "same_as", "view_of", "role")

    def __init__(self, meta, input_index, same_as=None, view_of=None, role="user"):
        self.meta, self.input_index, self.same_as, self.view_of, self.role = meta, input_index, same_as, view_of, role

    def replace(self, **changes) -> "OutputInfo":
        fields = {k: getattr(self, k) for k in self.__slots__}
        fields.update(changes)
        return OutputInfo(**fields)

    def __repr__(self):
        view = "" if self.view_of is None else f", {self.view_of!r}"
        role = "" if self.role == "user" else f", role={self.role}"
        return f"OutputInfo({self.meta}, input={self.input_index}, same_as={self.same_as}{view}{role})"


def describe(gm) -> str:
    """Comment lines for dumps: what each output is, and the input copy-backs."""
    infos = gm.meta.get(OUTPUTS_KEY, [])
    names = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    lines = ["# outputs:"]
    for pos, info in enumerate(infos):
        if info.same_as is not None:
            what = f"the same tensor as output {info.same_as}"
        elif info.input_index is not None:
            what = f"input {info.input_index} ({names[info.input_index]}) itself"
        elif info.view_of is not None:
            what = repr(info.view_of)
        elif info.role == "mutation":
            what = "new value of a mutated input"
        elif info.role == "base":
            what = "base of aliased outputs (not returned)"
        else:
            what = "computed"
        lines.append(f"#   {pos}: {info.meta}  {what}")
    mutations = gm.meta.get(MUTATIONS_KEY, ())
    if mutations:
        lines.append("# input mutations (copied back in place after the graph runs, in this order):")
        lines += [f"#   {m!r}".replace(f"input {m.input_index} ", f"input {m.input_index} ({names[m.input_index]}) ", 1)
                  for m in mutations]
    return "\n".join(lines) + "\n"


def call_with_effects(gm, inputs) -> list:
    """Run a functional graph (ATen or prims) as eager ran the original: copy new values into mutated
    inputs, and return the user outputs (flat) with eager's identity and aliasing."""
    flat = list(_run(gm, inputs))
    infos = gm.meta[OUTPUTS_KEY]
    mutations = gm.meta.get(MUTATIONS_KEY, ())
    storages = {x.untyped_storage()._cdata for x in inputs if isinstance(x, torch.Tensor)}
    new_values = [(m.input_index, flat[m.output_index]) for m in mutations if m.output_index is not None]
    # A new value may be an input itself (say, a clone of one): take it before any copy-back lands.
    new_values = [(i, v.clone() if v.untyped_storage()._cdata in storages else v) for i, v in new_values]
    for i, v in new_values:
        copy_into(inputs[i], v)
    for j, info in enumerate(infos):  # computed outputs (and bases of views) in eager's layout
        if info.role in ("user", "base") and isinstance(flat[j], torch.Tensor) and info.view_of is None and \
                info.input_index is None and info.same_as is None:
            flat[j] = _in_layout(flat[j], info.meta)
    out = []
    for pos, info in enumerate(infos):
        if info.role != "user":
            continue
        if info.same_as is not None:
            out.append(out[info.same_as])
        elif info.input_index is not None:
            out.append(inputs[info.input_index])
        elif info.view_of is not None:
            v = info.view_of
            base = {"input": lambda: inputs[v.index], "output": lambda: flat[v.index],
                    "constant": lambda: getattr(gm, v.index)}[v.base]()
            out.append(view_of_storage(base, v.shape, v.strides, v.offset, v.dtype))
        else:
            out.append(flat[pos])
    for m in mutations:  # after the views above, which are relative to the inputs' original offsets
        if m.layout is not None:
            inputs[m.input_index].as_strided_(*m.layout)
    for m in mutations:
        if m.storage is not None:
            v = m.storage
            inputs[m.input_index].set_(view_of_storage(flat[v.index], v.shape, v.strides, v.offset, v.dtype))
    return out


def _run(gm, inputs):
    """gm(*inputs), with each library call's tensor arguments in the layouts eager gave them."""
    if not any(ARG_METAS_KEY in n.meta for n in gm.graph.nodes):
        return gm(*inputs)
    return _EagerLayouts(gm).run(*inputs)


class _EagerLayouts(fx.Interpreter):
    def run_node(self, n):
        metas = n.meta.get(ARG_METAS_KEY)
        if metas is None:
            return super().run_node(n)
        with self._set_current_node(n):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            return self.call_function(n.target, _laid_out(args, metas[0]), _laid_out(kwargs, metas[1]))


def _laid_out(value, meta):
    """`value` with `meta`'s strides: itself when it has them, else a copy (dense, in their order)."""
    if isinstance(value, torch.Tensor) and meta is not None:
        if value.stride() == meta.strides:
            return value
        out = torch.empty_strided(meta.shape, preserved_strides(meta.shape, meta.strides), dtype=value.dtype,
                                  device=value.device)
        return out.copy_(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_laid_out(v, m) for v, m in zip(value, meta))
    if isinstance(value, dict):
        return {k: _laid_out(v, meta[k]) for k, v in value.items()}
    return value


def _in_layout(value: torch.Tensor, meta) -> torch.Tensor:
    """`value` copied into storage with eager's strides (a stride-0 dim is a broadcast: one copy)."""
    out = torch.empty_strided(meta.shape, meta.strides, dtype=meta.dtype, device=meta.device)
    one = tuple(slice(0, 1) if st == 0 else slice(None) for st in meta.strides)
    out[one].copy_(value[one])
    return out
