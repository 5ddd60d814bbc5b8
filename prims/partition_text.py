"""A partition as text, for `kiln dump` and the `partition` log: what is saved (with sizes), what the
backward recomputes, and the bytes against the default partition and eager's saved tensors."""
from __future__ import annotations

import torch.fx as fx

from .symbolic import size_hint
from .builder import META_KEY


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _compare(saved: int, other: int | None, what: str) -> str:
    if other is None:
        return ""
    ratio = f", {saved / other:.2f}x" if other else ""
    return f"; {what}: {human_bytes(other)}{ratio}"


def _op(n: fx.Node) -> str:
    if n.op != "call_function":
        return n.op
    args = ", ".join(a.name if isinstance(a, fx.Node) else repr(a) for a in n.args)
    return f"{getattr(n.target, '__name__', n.target)}({args})"[:100]


def partition_text(part, eager_saved_bytes: int | None = None) -> str:
    nodes = {n.name: n for n in part.joint.graph.nodes} if part.joint is not None else {}
    lines = [f"# partition ({part.strategy}, {part.seconds * 1e3:.1f} ms): {len(part.saved)} saved values, "
             f"{human_bytes(part.saved_bytes)}" + _compare(part.saved_bytes, part.save_all_bytes, "save_all")
             + _compare(part.saved_bytes, eager_saved_bytes, "eager's saved tensors")
             + f"; {len(part.recomputed)} nodes recomputed in the backward"]
    lines.append("# saved:")
    for name in part.saved:
        n = nodes.get(name)
        meta = n.meta.get(META_KEY) if n is not None else None
        size = _size(meta)
        lines.append(f"#   {name:<24} {str(meta):<28} {human_bytes(size):>10}   {_op(n) if n is not None else ''}")
    lines.append("# recomputed in the backward:")
    for name in part.recomputed:
        n = nodes.get(name)
        lines.append(f"#   {name:<24} {_op(n) if n is not None else ''}")
    pinned = [name for name in part.saved if name in part.banned]
    if pinned:
        lines.append("# saved because they may not be recomputed:")
        lines += [f"#   {name:<24} {part.banned[name]}" for name in pinned]
    return "\n".join(lines) + "\n"


def partition_dump(part, eager_saved_bytes: int | None = None) -> str:
    joint = part.joint.code if part.joint is not None else "(joint graph not kept)\n"
    return (f"# joint graph\n{joint}\n{partition_text(part, eager_saved_bytes)}\n"
            f"# forward graph\n{part.forward.code}\n# backward graph\n{part.backward.code}")


def _size(meta) -> int:
    try:
        return size_hint(meta.numel()) * meta.dtype.itemsize
    except AttributeError:
        return 0
