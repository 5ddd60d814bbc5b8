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
`a + alpha * b` with a full complex product (eager's fmadd: (1+2j) + (inf+0j) is inf+nanj);
division is c10::complex's (Smith's scaling), which both of eager's CPU loops call.
Ops decline (return None) for inputs they do not cover; decompose then falls back as before.
"""
from __future__ import annotations

import operator
from typing import Callable

import torch

from ..builder import FRESH_ARGS_KEY, META_KEY, Value, current_builder
from ..eager_strides import is_dense
from ..meta import TensorMeta
from ..prim import PRIMS
from .promote import convert, result_type
from .registry import call_aten, fallback_call

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
    m = z.meta
    if isinstance(m, TensorMeta) and not is_dense(m.shape, m.strides) and node.op == "call_function":
        # a library result with gaps (empty_strided; inputs are viewed as they are): a library copy makes it dense, where the view's
        # argument would otherwise be copied by a kernel, which cannot be complex
        z = fallback_call(aten.clone.default, z, memory_format=torch.contiguous_format,
                          _meta=TensorMeta.contiguous(tuple(m.shape), m.dtype, m.device), _arg_metas=((m,), {}),
                          _reason="a complex tensor with gaps, made dense for its real pair")
    return PRIMS["view_as_real"](PRIMS["resolve_conj"](z))


def to_complex(pair: Value, strides=None, fresh=False) -> Value:
    """The complex Value of a pair: view_as_complex of it, laid out row-major (stride 1, size 2), or
    with the complex `strides` given (any: the pair is then laid out with twice them).
    `fresh`: a node of its own whose pair the lowering copies into a buffer of its own."""
    shape = tuple(pair.shape[:-1])
    meta = TensorMeta.contiguous(shape, COMPLEX_OF[pair.dtype], pair.device)
    arg = TensorMeta.contiguous(tuple(pair.shape), pair.dtype, pair.device)
    if strides is not None:
        meta = TensorMeta(shape, meta.dtype, tuple(strides), meta.device)
        arg = TensorMeta(tuple(pair.shape), pair.dtype, tuple(2 * s for s in strides) + (1,), arg.device)
    out = current_builder().emit(PRIMS["view_as_complex"], (pair,), {}, meta=meta, arg_metas=((arg,), {}),
                                 cse=not fresh)
    if fresh:
        out.node.meta[FRESH_ARGS_KEY] = True
    return out


def complex_output(value, info):
    """A complex graph output made from a pair (graph_io.OutputInfo `info`: a fresh tensor in eager),
    as a view of a pair a kernel writes for it alone: no kernel can copy a complex buffer, and the
    pair may be an input's view or another output's. The pair is written in eager's strides
    (`z.t() * 2` is column-major; an as_strided result may have gaps or overlap)."""
    meta = info.meta
    if not isinstance(value, Value) or not isinstance(meta, TensorMeta) or info.view_of is not None \
            or info.same_as is not None or info.input_index is not None:
        return value
    # a pair's view, or a graph input or constant the output must be a fresh copy of
    # (`zeros_like(z).copy_(z)`): copied as its pair, as no kernel can copy a complex buffer
    if value.node.target is not PRIMS["view_as_complex"] and not (
            value.node.op in ("placeholder", "get_attr") and value.dtype in PAIR_DTYPE):
        return value
    strides = tuple(meta.strides)  # overlapping ones too: equal elements write equal values, as real outputs
    return to_complex(pair_of(value), strides, fresh=True)


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


def _scalar_op(py, dtype, *xs):
    """`py` on Python floats as the dtype computes it (0-d tensors: float32 rounding, 1/0 = inf)."""
    out = py(*(torch.tensor(x, dtype=dtype) for x in xs))
    return out.item()


def _binary(aten_op, py, swap):
    """An op on two parts, each a Value or a Python float. `swap`: how to put a Python float first
    (ATen ops take a tensor first): mul, add, comparisons swap; s - v is s + (-v); s / v is a full
    tensor of s divided by v."""
    def fn(a, b, dtype):
        if not isinstance(a, Value) and not isinstance(b, Value):
            return _scalar_op(py, dtype, a, b)
        if not isinstance(a, Value):
            return swap(a, b, dtype)
        return call_aten(aten_op, a, b)

    return fn


_mul = _binary(aten.mul.Tensor, operator.mul, lambda s, v, dt: call_aten(aten.mul.Tensor, v, s))
_add = _binary(aten.add.Tensor, operator.add, lambda s, v, dt: call_aten(aten.add.Tensor, v, s))
_sub = _binary(aten.sub.Tensor, operator.sub,
               lambda s, v, dt: call_aten(aten.add.Tensor, call_aten(aten.neg.default, v), s))
_div = _binary(aten.div.Tensor, operator.truediv,
               lambda s, v, dt: call_aten(aten.div.Tensor, _filled(s, v.shape, dt, v.device), v))
_ge = _binary(aten.ge.Tensor, operator.ge, lambda s, v, dt: call_aten(aten.le.Tensor, v, s))
_eq = _binary(aten.eq.Tensor, operator.eq, lambda s, v, dt: call_aten(aten.eq.Tensor, v, s))


def _abs(x, dtype):
    return call_aten(aten.abs.default, x) if isinstance(x, Value) else _scalar_op(torch.abs, dtype, x)


def _and(p, q):
    if isinstance(p, Value) and isinstance(q, Value):
        return call_aten(aten.logical_and.default, p, q)
    if isinstance(p, Value):
        p, q = q, p
    return q if bool(p) else False


def _where(cond, x, y, dtype):
    """cond ? x : y; cond a bool Value or a Python bool, x and y parts."""
    if not isinstance(cond, Value):
        return x if bool(cond) else y
    shape = cond.shape
    for v in (x, y):
        if isinstance(v, Value):
            shape = torch.broadcast_shapes(shape, v.shape)
    x, y = (_filled(v, shape, dtype, cond.device) for v in (x, y))
    return call_aten(aten.where.self, cond, x, y)


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


def _cdiv(a, b, dtype):
    """c10::complex's division (numpy's, Smith's scaling), which eager's scalar and vectorised CPU
    kernels both call: branch on |c| >= |d| (false for NaN), 0/0 divides each part by zero."""
    (ar, ai), (br, bi) = a, b
    abs_c, abs_d = _abs(br, dtype), _abs(bi, dtype)
    wide = _ge(abs_c, abs_d, dtype)
    rat = _div(bi, br, dtype)  # |c| >= |d|
    scl = _div(1.0, _add(br, _mul(bi, rat, dtype), dtype), dtype)
    re1 = _mul(_add(ar, _mul(ai, rat, dtype), dtype), scl, dtype)
    im1 = _mul(_sub(ai, _mul(ar, rat, dtype), dtype), scl, dtype)
    rat2 = _div(br, bi, dtype)  # |c| < |d|
    scl2 = _div(1.0, _add(bi, _mul(br, rat2, dtype), dtype), dtype)
    re2 = _mul(_add(_mul(ar, rat2, dtype), ai, dtype), scl2, dtype)
    im2 = _mul(_sub(_mul(ai, rat2, dtype), ar, dtype), scl2, dtype)
    zero = _and(_eq(abs_c, 0.0, dtype), _eq(abs_d, 0.0, dtype))
    re = _where(wide, _where(zero, _div(ar, abs_c, dtype), re1, dtype), re2, dtype)
    im = _where(wide, _where(zero, _div(ai, abs_d, dtype), im1, dtype), im2, dtype)
    return re, im


@register(aten.div.Tensor, aten.div.Scalar)
def div(meta, a, b):
    if not _covered(meta) or not _operands_covered(a, b):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(*_cdiv(parts(a, dtype), parts(b, dtype), dtype), meta)


@register(aten.reciprocal.default)
def reciprocal(meta, z):
    """complex(1) / z, as eager's scalar and vectorised kernels."""
    if not _covered(meta) or not _operands_covered(z):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    return from_parts(*_cdiv((1.0, 0.0), parts(z, dtype), dtype), meta)


def _add_alpha(meta, a, b, alpha, sign):
    if not _covered(meta) or not _operands_covered(a, b):
        return None
    dtype = PAIR_DTYPE[meta.dtype]
    alpha = alpha * sign
    br, bi = _cmul(parts(b, dtype), parts(alpha, dtype), dtype)
    ar, ai = parts(a, dtype)
    return from_parts(_add(ar, br, dtype), _add(ai, bi, dtype), meta)


@register(aten.add.Tensor, aten.add.Scalar)
def add(meta, a, b, alpha=1):  # .Scalar overloads take alpha positionally
    return _add_alpha(meta, a, b, alpha, 1)


@register(aten.sub.Tensor, aten.sub.Scalar)
def sub(meta, a, b, alpha=1):  # .Scalar overloads take alpha positionally
    return _add_alpha(meta, a, b, alpha, -1)


@register(aten.rsub.Tensor, aten.rsub.Scalar)
def rsub(meta, a, b, alpha=1):  # .Scalar overloads take alpha positionally
    return _add_alpha(meta, b, a, alpha, -1)


def _compare(both):
    """eq/ne as c10::complex's ==, part by part (eager promotes a real operand to (x, 0))."""
    def fn(meta, a, b):
        if not isinstance(meta, TensorMeta) or not _operands_covered(a, b):
            return None
        dtype = PAIR_DTYPE.get(result_type(a, b))
        if dtype is None:
            return None
        (ar, ai), (br, bi) = parts(a, dtype), parts(b, dtype)
        same = [_filled(_eq(x, y, dtype), meta.shape, torch.bool, meta.device) for x, y in ((ar, br), (ai, bi))]
        eq = call_aten(aten.logical_and.default, *same)
        return eq if both else call_aten(aten.logical_not.default, eq)

    return fn


register(aten.eq.Tensor, aten.eq.Scalar)(_compare(True))
register(aten.ne.Tensor, aten.ne.Scalar)(_compare(False))


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
