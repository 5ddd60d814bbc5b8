"""Type promotion and broadcasting helpers for decompositions (prims themselves do neither)."""
from __future__ import annotations

import enum
import functools

import torch

from ..symbolic import NotConcrete, SizeExpr, differs, is_symbolic
from .. import ops  # noqa: F401  (registers prims)
from ..builder import is_tensor_like
from ..prim import PRIMS

P = PRIMS


class Promotion(enum.Enum):
    DEFAULT = "default"  # result in the promoted dtype
    INT_TO_FLOAT = "int_to_float"  # ints and bools compute in the default float dtype
    ALWAYS_BOOL = "always_bool"  # compute in the promoted dtype, result is bool


@functools.lru_cache(maxsize=None)
def _meta_probe(dtype, zero_dim):
    return torch.empty(() if zero_dim else (1,), dtype=dtype, device="meta")


def result_type(*args) -> torch.dtype:
    """torch.result_type over any number of tensor-likes and Python scalars.

    As in torch: n-dim tensors outrank 0-dim tensors, which outrank Python scalars, unless a
    lower rank brings a higher category (bool < int < float < complex).
    """
    dim = zero = None
    scalars = []
    for a in args:
        if is_tensor_like(a):
            if a.ndim:
                dim = a.dtype if dim is None else torch.promote_types(dim, a.dtype)
            else:
                zero = a.dtype if zero is None else torch.promote_types(zero, a.dtype)
        elif a is not None:
            scalars.append(a)
    wrapped = _scalar_kind(scalars)
    if zero is None and wrapped is None:
        low = None
    elif zero is None:
        low = torch.tensor(wrapped).dtype
    else:
        low = zero if wrapped is None else torch.result_type(_meta_probe(zero, True), wrapped)
    if dim is None:
        return low
    return dim if low is None else torch.result_type(_meta_probe(dim, False), _meta_probe(low, True))


def _scalar_kind(scalars):
    """One Python scalar standing for a list of them (its category is the highest among them)."""
    if not scalars:
        return None
    for kind, rep in ((complex, 1j), (float, 1.0)):
        if any(isinstance(s, kind) for s in scalars):
            return rep
    return 1 if any(not isinstance(s, bool) for s in scalars) else True


def common_dtype(*args, how: Promotion = Promotion.DEFAULT) -> torch.dtype:
    """The dtype eager's TensorIterator casts every operand to (before 16-bit floats widen for the math)."""
    dtype = result_type(*args)
    if how is Promotion.INT_TO_FLOAT and not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.get_default_dtype()
    return dtype


def elementwise_dtypes(*args, how: Promotion = Promotion.DEFAULT):
    """(compute dtype, result dtype) for an elementwise op; low-precision floats compute in float32."""
    dtype = common_dtype(*args, how=how)
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    return compute, (torch.bool if how is Promotion.ALWAYS_BOOL else dtype)


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, size in enumerate(s):
            d = ndim - len(s) + i
            if isinstance(size, SizeExpr):
                differs(size, 1)  # (a size that may be 1 would broadcast: guarded not 1, or NotConcrete)
            if size != 1:
                if out[d] != 1 and out[d] != size:
                    if isinstance(out[d], SizeExpr) or isinstance(size, SizeExpr):
                        raise NotConcrete(f"broadcasting sizes {out[d]!r} and {size!r}, which may differ")
                    raise ValueError(f"shapes {[list(x) for x in shapes]} do not broadcast")
                out[d] = size
    return tuple(out)


def broadcast_to(x, shape):
    """Broadcast a Value/tensor to `shape` (numpy rules) with one broadcast_in_dim, if needed."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    offset = len(shape) - x.ndim
    return P["broadcast_in_dim"](x, shape, tuple(range(offset, len(shape))))


def convert(x, dtype):
    """Cast a tensor-like (prim) or a Python scalar (in Python) to dtype."""
    if is_tensor_like(x):
        return x if x.dtype == dtype else P["convert_element_type"](x, dtype)
    return scalar_of(x, dtype)


def scalar_of(value, dtype):
    """A Python scalar as eager casts it to `dtype`: 16-bit floats round (0.001 is 0.0010004 in float16,
    3.4e38 is inf in bfloat16), integers wrap (-1 is 255 in uint8). float32 and float64 keep the
    Python float: the renderers round it to float32 exactly once."""
    if is_symbolic(value):  # a size as a value: kept symbolic where casting it changes nothing
        if dtype in (torch.float32, torch.float64, torch.int64):
            return value
        raise NotConcrete(f"size {value!r} cast to {dtype}")
    if dtype == torch.bool:
        return bool(value)
    if dtype.is_floating_point:
        value = float(value)
        return float(torch.tensor(value, dtype=dtype)) if dtype.itemsize < 4 else value
    value = int(value)  # a float scalar into an int computation: torch truncates as well
    if dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        info = torch.iinfo(dtype)
        value = (value - info.min) % (1 << info.bits) + info.min
    return value


def elementwise_args(*args, how=Promotion.DEFAULT, opmath_second=False):
    """Promote and broadcast operands; returns (operands in compute dtype, result dtype, shape).

    A Python scalar is cast to the common dtype first (rounded to float16, say), as eager's
    TensorIterator does; `opmath_second`: a Python scalar second operand is kept in the compute
    dtype instead, as eager's mul and division kernels read a scalar factor or divisor
    (x_f16 * 3.4e38 is finite for finite x; 3.4e38 in float16 is inf)."""
    compute, result = elementwise_dtypes(*args, how=how)
    common = common_dtype(*args, how=how)
    shape = broadcast_shapes(*(tuple(a.shape) for a in args if is_tensor_like(a)))
    out = [broadcast_to(convert(a, compute), shape) if is_tensor_like(a)
           else convert(scalar_of(a, compute if opmath_second and i == 1 else common), compute)
           for i, a in enumerate(args)]
    return out, result, shape
