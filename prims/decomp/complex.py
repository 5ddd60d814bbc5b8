"""Complex ATen ops -> real prims on (real, imag) pairs.

Inside the prims graph a complex64/complex128 value is computed as its *pair*: a float32/float64
Value with a trailing dim of size 2, which is what `torch.view_as_real` gives (the same bytes). The
complex Value an ATen node must still produce (decompose checks it, fallbacks and graph outputs
read it) is the extern prim `view_as_complex` of the pair, laid out row-major; `pair_of` sees
through it, so a chain of complex ops is real prims end to end and those boundary calls die
unless something complex reads them. A complex value from elsewhere (a graph input, a fallback's
result) enters through the extern prims `resolve_conj` and `view_as_real`: free views in the
wrapper (resolve_conj copies only a conjugate-bit input).

The arithmetic is eager's (c10::complex and its vectorised CPU kernels), so special values match:
a real operand is (x, +0.0), products are the plain (ac - bd, ad + bc), and add/sub are
`a + alpha * b` with a full complex product (eager's fmadd: (1+2j) + (inf+0j) is inf+nanj).
Ops decline (return None) for inputs they do not cover; decompose then falls back as before.
"""
from __future__ import annotations

import operator
from typing import Callable

import torch

from ..builder import META_KEY, Value, current_builder
from ..eager_strides import is_dense
from ..meta import TensorMeta
from ..prim import PRIMS
from .promote import convert
from .registry import call_aten

aten = torch.ops.aten

PAIR_DTYPE = {torch.complex64: torch.float32, torch.complex128: torch.float64}
COMPLEX_OF = {v: k for k, v in PAIR_DTYPE.items()}


# ATen overload -> fn(result meta, *args, **kwargs) -> complex/real Value, or None (not covered).
COMPLEX_DECOMPOSITIONS: dict = {}


def register(*ops) -> Callable:
    def wrap(fn):
        for op in ops:
            COMPLEX_DECOMPOSITIONS[op] = fn
        return fn

    return wrap


# --- the pair representation -------------------------------------------------------------------

def pair_of(z: Value) -> Value:
    """The (..., 2) real Value of a complex Value."""
    node = z.node
    if node.target is PRIMS["view_as_complex"]:
        src = node.args[0]
        return Value(src, src.meta[META_KEY])
    return PRIMS["view_as_real"](PRIMS["resolve_conj"](z))


def to_complex(pair: Value, strides=None) -> Value:
    """The complex Value of a pair: view_as_complex of it, laid out row-major (stride 1, size 2), or
    with the complex `strides` given (dense ones: the pair is then laid out with twice them)."""
    shape = tuple(pair.shape[:-1])
    meta = TensorMeta.contiguous(shape, COMPLEX_OF[pair.dtype], pair.device)
    arg = TensorMeta.contiguous(tuple(pair.shape), pair.dtype, pair.device)
    if strides is not None:
        meta = TensorMeta(shape, meta.dtype, tuple(strides), meta.device)
        arg = TensorMeta(tuple(pair.shape), pair.dtype, tuple(2 * s for s in strides) + (1,), arg.device)
    return current_builder().emit(PRIMS["view_as_complex"], (pair,), {}, meta=meta, arg_metas=((arg,), {}))


def in_eager_layout(value, meta):
    """A complex graph output made from a pair, re-made with eager's strides when they are dense
    (`z.t() * 2` is column-major in eager): no kernel can write a complex buffer, so the pair is
    written in that order and viewed as complex, instead of copying the complex result."""
    if not isinstance(value, Value) or value.node.target is not PRIMS["view_as_complex"] \
            or not isinstance(meta, TensorMeta) or tuple(meta.strides) == tuple(value.stride()) \
            or not is_dense(meta.shape, meta.strides):
        return value
    return to_complex(pair_of(value), meta.strides)


def _round(v: float, dtype) -> float:
    return float(torch.tensor(v, dtype=dtype))


def parts(x, dtype):
    """(re, im) of an operand in the real dtype `dtype`: Values, or Python floats rounded to it (a
    Python scalar is cast to the op's complex dtype first, as eager's TensorIterator does)."""
    if isinstance(x, Value):
        if x.dtype.is_complex:
            p = pair_of(x)
            re, im = (call_aten(aten.select.int, p, -1, i) for i in (0, 1))
            return convert(re, dtype), convert(im, dtype)
        return convert(x, dtype), 0.0
    if isinstance(x, complex):
        return _round(x.real, dtype), _round(x.imag, dtype)
    return _round(float(x), dtype), 0.0


def _binary(aten_op, py, swap_ok):
    def fn(a, b, dtype):
        if not isinstance(a, Value) and not isinstance(b, Value):
            return _round(py(a, b), dtype)
        if not isinstance(a, Value):
            if swap_ok:
                return call_aten(aten_op, b, a)
            return call_aten(aten.add.Tensor, call_aten(aten.neg.default, b), a)  # s - v is s + (-v)
        return call_aten(aten_op, a, b)

    return fn


_mul = _binary(aten.mul.Tensor, operator.mul, True)
_add = _binary(aten.add.Tensor, operator.add, True)
_sub = _binary(aten.sub.Tensor, operator.sub, False)


def _cmul(a, b, dtype):
    (ar, ai), (br, bi) = a, b
    re = _sub(_mul(ar, br, dtype), _mul(ai, bi, dtype), dtype)
    im = _add(_mul(ar, bi, dtype), _mul(ai, br, dtype), dtype)
    return re, im


def _filled(v, shape, dtype, device):
    if isinstance(v, Value):
        return convert(v if tuple(v.shape) == tuple(shape) else call_aten(aten.expand.default, v, list(shape)), dtype)
    return PRIMS["full"](tuple(shape), v, dtype=dtype, device=device)


def stack_pair(re: Value, im: Value) -> Value:
    """The (..., 2) pair of two same-shaped parts, as `where(lane == 0, re, im)` over the pair's
    shape: pointwise, so it fuses with what computes the parts (a cat would realize each part)."""
    n, shape = re.ndim, tuple(re.shape) + (2,)
    lane = PRIMS["iota"](2, start=0, step=1, dtype=torch.int64, device=re.device)
    first = PRIMS["eq"](PRIMS["broadcast_in_dim"](lane, shape, (n,)), 0)
    spread = [PRIMS["broadcast_in_dim"](v, shape, tuple(range(n))) for v in (re, im)]
    return PRIMS["where"](first, *spread)


def from_parts(re, im, meta: TensorMeta) -> Value:
    """The complex Value of result `meta` from its parts (Values or floats, broadcast to its shape)."""
    dtype = PAIR_DTYPE[meta.dtype]
    re, im = (_filled(v, meta.shape, dtype, meta.device) for v in (re, im))
    return to_complex(stack_pair(re, im))


def _covered(meta) -> bool:
    return isinstance(meta, TensorMeta) and meta.dtype in PAIR_DTYPE


def _operands_covered(*xs) -> bool:
    """Tensor operands in a dtype the pairs cover (complex32's float16 halves are not)."""
    return all(not isinstance(x, Value) or not x.dtype.is_complex or x.dtype in PAIR_DTYPE for x in xs)


# --- arithmetic --------------------------------------------------------------------------------

@register(aten.mul.Tensor, aten.mul.Scalar)
def mul(meta, a, b):
    if not _covered(meta) or not _operands_covered(a, b):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(*_cmul(parts(a, dtype), parts(b, dtype), dtype), meta)


def _add_alpha(meta, a, b, alpha, sign):
    if not _covered(meta) or not _operands_covered(a, b):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    alpha = alpha * sign
    br, bi = _cmul(parts(b, dtype), parts(alpha, dtype), dtype)
    ar, ai = parts(a, dtype)
    return from_parts(_add(ar, br, dtype), _add(ai, bi, dtype), meta)


@register(aten.add.Tensor, aten.add.Scalar)
def add(meta, a, b, *, alpha=1):
    return _add_alpha(meta, a, b, alpha, 1)


@register(aten.sub.Tensor, aten.sub.Scalar)
def sub(meta, a, b, *, alpha=1):
    return _add_alpha(meta, a, b, alpha, -1)


@register(aten.rsub.Tensor, aten.rsub.Scalar)
def rsub(meta, a, b, *, alpha=1):
    return _add_alpha(meta, b, a, alpha, -1)


@register(aten.neg.default)
def neg(meta, z):
    if not _covered(meta):
        return None
    return to_complex(call_aten(aten.neg.default, pair_of(z)))


@register(aten._conj.default, aten._conj_physical.default, aten.conj_physical.default)
def conj(meta, z):
    """The conjugate bit of eager's `conj` view is a value here: (re, -im)."""
    if not _covered(meta):
        return None
    re, im = parts(z, PAIR_DTYPE[meta.dtype])
    return from_parts(re, call_aten(aten.neg.default, im), meta)


@register(aten.clone.default, aten.alias.default, aten.detach.default, aten.resolve_conj.default,
          aten.lift_fresh_copy.default)
def identity(meta, z, **_):
    """Prims values have no layout or conjugate bit: a clone is the value itself."""
    return to_complex(pair_of(z)) if _covered(meta) else None


@register(aten.abs.default)
def abs_(meta, z):
    """|z| is hypot(re, im), as eager's kernels (std::abs, Sleef hypot): finite for 3e38+3e38j."""
    if not isinstance(z, Value) or z.dtype not in PAIR_DTYPE:
        return None
    re, im = parts(z, PAIR_DTYPE[z.dtype])
    return call_aten(aten.hypot.default, re, im)


@register(aten.angle.default)
def angle(meta, z):
    if not isinstance(z, Value) or z.dtype not in PAIR_DTYPE:
        return None
    re, im = parts(z, PAIR_DTYPE[z.dtype])
    return call_aten(aten.atan2.default, im, re)


@register(aten.polar.default)
def polar(meta, r, theta):
    """r * (cos theta, sin theta), as eager's kernel: polar(inf, 0) is inf+nanj."""
    if not _covered(meta):
        return None
    return from_parts(call_aten(aten.mul.Tensor, r, call_aten(aten.cos.default, theta)),
                      call_aten(aten.mul.Tensor, r, call_aten(aten.sin.default, theta)), meta)


@register(aten.complex.default)
def complex_(meta, re, im):
    return from_parts(re, im, meta) if _covered(meta) else None


@register(aten.view_as_real.default)
def view_as_real(meta, z):
    return pair_of(z) if z.dtype in PAIR_DTYPE else None


@register(aten.view_as_complex.default)
def view_as_complex(meta, x):
    return to_complex(x) if _covered(meta) else None


@register(aten._to_copy.default)
def to_copy(meta, x, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
            memory_format=None):
    """dtype conversions from or to complex (complex -> real keeps the real part, as eager)."""
    if not isinstance(meta, TensorMeta) or (device is not None and torch.device(device) != x.device) \
            or (layout not in (None, torch.strided)) or not _operands_covered(x):
        return None
    if meta.dtype == torch.bool:
        return None  # a complex number is true when either part is nonzero
    if meta.dtype.is_complex:
        if meta.dtype not in PAIR_DTYPE:
            return None
        return from_parts(*parts(x, PAIR_DTYPE[meta.dtype]), meta)
    re, _ = parts(x, PAIR_DTYPE[x.dtype])
    return convert(re, meta.dtype)
