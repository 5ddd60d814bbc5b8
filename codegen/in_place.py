"""Input writes done in place: a kernel stores a mutated input's new value straight into the input.

A graph that writes an input (`p.add_(u)`, an optimizer's `exp_avg.mul_(b).add_(g)`) computes the
new value into a buffer and copies it back into the caller's tensor after the last kernel
(wrapper.py): a second pass over that memory and a buffer as large as the input. When the kernel
that computes the new value may write it over the old one, the wrapper binds that buffer to the
input itself and drops the copy-back. That holds when

- the buffer has the input's shape, strides and dtype, is stored by a pointwise kernel, is not
  also a graph output (the output would become the input object), and is the input's one new value;
- the input shares memory with no other input (the call-time storage check keeps that true);
- inside that kernel, every load of the input reads the element being stored and feeds the stored
  value; and no later step reads it;
- nothing can run the graph again on the caller's inputs once they are overwritten: the target is
  C++ (Triton's autotuning runs a kernel several times), no kernel checks indices (a bad index
  reruns the whole graph eagerly), the kernel has no fast path to redo exactly (sin/cos/tan: an
  input outside the fast path's domain reruns the kernel), and no library call comes after it
  (one that raises makes the back end rerun the graph eagerly).
"""
from __future__ import annotations

from kiln.inductor.ir.buffers import ComputedBuffer, InputBuffer
from kiln.inductor.ir.loop import LOADS, LoopOp, walk
from kiln.inductor.ir.schedule import Alloc, FusedKernel, Run

from .cpp.ops import DOMAIN


def written_in_place(graph, steps, backend) -> dict[str, str]:
    """Mutation buffer name -> the input buffer name it may be written into."""
    if getattr(backend, "name", None) != "cpp" or getattr(backend, "checks_indices", False):
        return {}
    counts: dict[int, int] = {}
    for index, _ in graph.mutations:
        counts[index] = counts.get(index, 0) + 1
    kept = graph.returned_buffers()
    runs = [s.item for s in steps if isinstance(s, Run)]
    found = {}
    for index, name in graph.mutations:
        source = graph.inputs[index]
        buf = graph.buffers.get(name)
        if counts[index] != 1 or name in kept or not isinstance(buf, ComputedBuffer) \
                or not _same_layout(source, buf) or _shares_memory(graph, index):
            continue
        position = next((i for i, k in enumerate(runs) if isinstance(k, FusedKernel) and name in k.writes()), None)
        if position is None or runs[position].inner:
            continue
        kernel, later = runs[position], runs[position + 1:]
        if _safe_in_kernel(kernel, name, source.name) and not _redone(kernel) \
                and not any(not isinstance(item, FusedKernel) or source.name in item.reads() for item in later):
            found[name] = source.name
    return found


def allocation_line(step: Alloc, in_place: dict, var) -> str | None:
    """The wrapper line binding a buffer to its input, or None for an ordinary allocation."""
    source = in_place.get(step.name)
    if source is None:
        return None
    line = f"    {step.name} = {var(source)}"
    return line + (f"; del {step.reuse}" if step.reuse else "")


def _same_layout(source: InputBuffer, buf: ComputedBuffer) -> bool:
    a, b = source.layout, buf.layout
    expanded = any(st == 0 and n > 1 for n, st in zip(a.shape, a.strides))
    return not expanded and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype \
        and a.device == b.device


def _shares_memory(graph, index: int) -> bool:
    tensors = [x for x in graph.example_inputs]
    mine = tensors[index]
    if not hasattr(mine, "untyped_storage"):
        return True
    ptr = mine.untyped_storage().data_ptr()
    return any(j != index and hasattr(t, "untyped_storage") and t.untyped_storage().data_ptr() == ptr
               for j, t in enumerate(tensors))


def _safe_in_kernel(kernel: FusedKernel, name: str, source: str) -> bool:
    """Every load of `source` in the kernel reads the element `name` stores, and the stored value
    depends on it: the load then comes before the store whatever order the C++ compiler picks (the
    kernel's pointer arguments are `__restrict__`, so only a data dependence orders them)."""
    store = kernel.node_of(name).store
    cone = _cone(kernel, name)
    for node in kernel.nodes:
        for n in walk(node.body):
            if n.op in LOADS and n.attr[0] == source:
                if n.op is not LoopOp.LOAD or n.attr[1] != store or node.name not in cone:
                    return False
    return True


def _redone(kernel: FusedKernel) -> bool:
    """Whether the kernel may run a second time (a fast-path op whose input left its domain)."""
    return any(n.op in DOMAIN for node in kernel.nodes for n in walk(node.body))


def _cone(kernel: FusedKernel, name: str) -> set[str]:
    """The kernel's nodes whose values the node `name` computes from (itself included)."""
    cone, todo = set(), [name]
    while todo:
        current = todo.pop()
        node = kernel.node_of(current)
        if node is None or current in cone:
            continue
        cone.add(current)
        todo.extend(n.attr[0] for n in walk(node.body) if n.op in LOADS)
    return cone
