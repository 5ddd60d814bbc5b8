"""`aten._foreach_*` ops (the optimizers' multi-tensor paths: `_foreach_add_`, `_foreach_addcdiv_`,
`_foreach_lerp_`, `_foreach_norm`, ...) traced element by element, as eager's own slow path runs
them: one ATen op per tensor of the list, which functionalization, decomposition and fusion then
handle like any other (an in-place foreach op writes a list of tensors, which no single functional
op can say).

Per element i, every list argument whose length is the list's gives its i-th item (tensors and
scalars alike) and every other argument is passed as it is; the element op is the torch function of
the same name (`torch.add` for `_foreach_add`), or the in-place Tensor method (`add_`) for in-place
ones. The exceptions are tables below.
"""
from __future__ import annotations

import torch

PREFIX = "_foreach_"


def is_foreach(func) -> bool:
    return func.namespace == "aten" and func.__name__.startswith(PREFIX)


# foreach name (without the trailing "_") -> the element op, where it is not torch.<name>
def _maximum(x, other):
    return torch.maximum(x, other) if isinstance(other, torch.Tensor) else torch.clamp_min(x, other)


def _minimum(x, other):
    return torch.minimum(x, other) if isinstance(other, torch.Tensor) else torch.clamp_max(x, other)


def _pointwise_with_tensor_scalar(op):
    """`_foreach_addcmul.Tensor`/`addcdiv.Tensor`: the scalars come as a 1-D tensor, item i a 0-dim
    tensor, which `torch.addcmul`'s `value` does not take: self + value * (t1 op t2), eager's order."""
    def element(x, t1, t2, value=1):
        if not isinstance(value, torch.Tensor):
            return getattr(torch, op)(x, t1, t2, value=value)
        inner = t1 * t2 if op == "addcmul" else t1 / t2
        return x + (inner * value).to(x.dtype)
    return element


def _norm(x, ord=2, dtype=None):
    return torch.linalg.vector_norm(x, ord, dtype=dtype)


def _powsum(x, ord=2, dtype=None):
    """The p-norm before its root: sum(|x| ** ord)."""
    return (x if dtype is None else x.to(dtype)).abs().pow(ord).sum()


def _copy(x, src, non_blocking=False):
    return src.to(x.dtype).expand_as(x).clone()


ELEMENT_OPS = {
    "maximum": _maximum,
    "minimum": _minimum,
    "addcmul": _pointwise_with_tensor_scalar("addcmul"),
    "addcdiv": _pointwise_with_tensor_scalar("addcdiv"),
    "norm": _norm,
    "powsum": _powsum,
    "copy": _copy,
    "max": torch.amax,
    "zero": torch.zeros_like,
}


def run_per_element(func, args, kwargs):
    """The foreach op's result, computed by per-element torch calls (recorded by the caller's mode)."""
    name = func.__name__.split(".")[0][len(PREFIX):]
    in_place = name.endswith("_")
    base = name.rstrip("_")
    schema_args = func._schema.arguments
    lists = [a for a in (*args, *kwargs.values()) if isinstance(a, (list, tuple))]
    n = len(lists[0]) if lists else 0
    per_element_tensor = {"addcmul", "addcdiv"}  # their `.Tensor` overload's scalars: one item per element

    def item(value, i, arg_name):
        if isinstance(value, (list, tuple)) and len(value) == n:
            return value[i]
        if base in per_element_tensor and arg_name == "scalars" and isinstance(value, torch.Tensor):
            return value[i]
        return value

    names = [a.name for a in schema_args]
    results = []
    for i in range(n):
        element_args = [item(v, i, names[k] if k < len(names) else "") for k, v in enumerate(args)]
        element_kwargs = {k: item(v, i, k) for k, v in kwargs.items()}
        if in_place:
            target = element_args[0]
            method = getattr(torch.Tensor, base + "_", None)
            if method is not None and base not in ELEMENT_OPS:
                method(*element_args, **element_kwargs)
            else:
                target.copy_(_element_op(base)(*element_args, **element_kwargs))
        else:
            results.append(_element_op(base)(*element_args, **element_kwargs))
    return None if in_place else results


def _element_op(base: str):
    op = ELEMENT_OPS.get(base) or getattr(torch, base, None)
    if op is None:
        raise NotImplementedError(f"no element op for aten._foreach_{base}")
    return op
