"""Data-movement ATen ops -> cat, pad, rev, gather, as_strided (and views); creation ops -> iota/full."""
from __future__ import annotations

import math

import torch

from ..symbolic import NotConcrete, is_size, is_symbolic
from ..builder import is_tensor_like
from ..meta import contiguous_strides, numel
from .promote import P, broadcast_shapes, broadcast_to, convert, result_type
from .registry import register
from .views import _dim, permute, select, slice_, squeeze, unsqueeze, view

aten = torch.ops.aten


@register(aten.cat.default)
def cat(tensors, dim=0):
    tensors = list(tensors)
    dtype = result_type(*tensors)
    shaped = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)]  # legacy: 1-d empties are skipped
    if not shaped:
        return convert(tensors[0], dtype)
    dim = _dim(dim, shaped[0].ndim)
    parts = [convert(t, dtype) for t in shaped]
    return parts[0] if len(parts) == 1 else P["cat"](parts, dim)


@register(aten.stack.default)
def stack(tensors, dim=0):
    dim = _dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


@register(aten._chunk_cat.default)
def chunk_cat(tensors, dim, num_chunks):
    dim = _dim(dim, tensors[0].ndim)
    pieces = []
    for t in tensors:
        size = t.shape[dim]
        per = -(-size // num_chunks)
        padded = constant_pad_nd(t, [0, 0] * (t.ndim - dim - 1) + [0, per * num_chunks - size], 0)
        pieces.append(view(padded, t.shape[:dim] + (num_chunks, per * numel(t.shape[dim + 1:]))))
    return cat(pieces, dim + 1)


@register(aten.constant_pad_nd.default)
def constant_pad_nd(x, pad, value=0):
    config = [(0, 0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        config[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1], 0)
    value = value if x.dtype != torch.bool else bool(value)
    if not x.dtype.is_floating_point and x.dtype != torch.bool:
        value = int(value)
    return P["pad"](x, value, tuple(config))


@register(aten.flip.default)
def flip(x, dims):
    dims = tuple(sorted({_dim(d, x.ndim) for d in dims})) if x.ndim else ()
    return P["rev"](x, dims) if dims else x


@register(aten.roll.default)
def roll(x, shifts, dims=()):
    if not dims:
        flat = view(x, (x.numel(),))
        return view(roll(flat, shifts, (0,)), x.shape)
    for s, d in zip(shifts, dims):
        d = _dim(d, x.ndim)
        n = x.shape[d]
        if n == 0 or s % n == 0:
            continue
        s %= n
        x = P["cat"]([slice_(x, d, n - s, n), slice_(x, d, 0, n - s)], d)
    return x


@register(aten.rot90.default)
def rot90(x, k=1, dims=(0, 1)):
    d0, d1 = _dim(dims[0], x.ndim), _dim(dims[1], x.ndim)
    k %= 4
    if k == 1:
        return _transpose(flip(x, [d1]), d0, d1)
    if k == 2:
        return flip(x, [d0, d1])
    if k == 3:
        return flip(_transpose(x, d0, d1), [d1])
    return x


def _transpose(x, a, b):
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


@register(aten.gather.default)
def gather(x, dim, index, *, sparse_grad=False):
    dim = _dim(dim, x.ndim)
    index = convert(index, torch.int64)
    if index.numel() == 0 or (x.ndim and x.shape[dim] == 0):
        return _nothing_to_read(index, x.shape[dim] if x.ndim else 1, tuple(index.shape), x)
    if x.ndim == 0:  # every index must still be 0: gather from x as one element
        flat = P["reshape"](index, (index.numel(),)) if index.ndim != 1 else index
        got = P["gather"](P["reshape"](x, (1,)), 0, _checked(flat, 1))
        return P["reshape"](got, tuple(index.shape)) if index.ndim != 1 else got
    return P["gather"](x, dim, _checked(index, x.shape[dim]))


def _nothing_to_read(index, size, out_shape, x):
    """A gather that reads nothing (an empty result, or a size-0 source dim) whose indices eager
    still checks, every one: a kernel over the result would check none, so check_index_all checks
    them in a kernel of their own (into a size-0 dim every index fails: eager's rerun raises)."""
    if index.numel():
        P["check_index_all"](P["reshape"](convert(index, torch.int64), (index.numel(),)), size)
    return P["full"](out_shape, 0, dtype=x.dtype, device=x.device)


def _checked(index, size):
    """Indices are data: each one is checked against its own dim's size before anything reads
    through it (compiled kernels read a safe element and flag the error; eager then raises)."""
    return P["check_index"](convert(index, torch.int64), size)


def _wrap(index, size, check=True):
    """Negative indices count from the end, as in Python; then checked against size unless the
    caller has made them safe itself."""
    index = convert(index, torch.int64)
    wrapped = P["where"](P["lt"](index, 0), P["add"](index, size), index)
    return P["check_index"](wrapped, size) if check else wrapped


@register(aten.index_select.default)
def index_select(x, dim, index):
    dim = _dim(dim, x.ndim)
    if x.ndim == 0:  # one index, which must be 0
        one = P["reshape"](convert(index, torch.int64), (1,)) if index.ndim != 1 else convert(index, torch.int64)
        return P["reshape"](P["gather"](P["reshape"](x, (1,)), 0, _checked(one, 1)), ())
    index = convert(index, torch.int64)
    index = P["reshape"](index, (index.numel(),)) if index.ndim != 1 else index
    out_shape = tuple(index.shape[0] if d == dim else s for d, s in enumerate(x.shape))
    if numel(out_shape) == 0 or x.shape[dim] == 0:
        return _nothing_to_read(index, x.shape[dim], out_shape, x)
    idx = P["broadcast_in_dim"](_checked(index, x.shape[dim]), out_shape, (dim,))
    return P["gather"](x, dim, idx)


def index(x, indices, checked=True):
    """Advanced indexing: the indexed dims become one flat dim gathered with a linear index. Each
    dim's indices are wrapped and checked against that dim before they are combined, so an index
    past one dim cannot land inside the flat range."""
    indices = list(indices) + [None] * (x.ndim - len(indices))
    expanded = []
    for i, t in enumerate(indices):
        if t is not None and t.dtype in (torch.bool, torch.uint8):
            raise _DataDependent("boolean mask indexing")
    dims = [d for d, t in enumerate(indices) if t is not None]
    bshape = broadcast_shapes(*(tuple(indices[d].shape) for d in dims))
    adjacent = dims == list(range(dims[0], dims[-1] + 1))
    rest = [d for d in range(x.ndim) if d not in dims]
    xp = permute(x, dims + rest)
    rest_shape = tuple(x.shape[d] for d in rest)
    flat_n = numel([x.shape[d] for d in dims])
    out_shape = bshape + rest_shape
    if flat_n == 0 and numel(bshape) != 0:
        if not checked:
            from ..errors import UnsupportedGraph

            raise UnsupportedGraph("indexing a dim of size 0 with unchecked indices: left to eager")
        for d in dims:  # every index into a size-0 dim fails its check: eager's rerun raises
            if x.shape[d] == 0:
                P["check_index_all"](P["reshape"](convert(indices[d], torch.int64), (indices[d].numel(),)), 0)
    if numel(out_shape) == 0 or flat_n == 0:
        full_shape = out_shape
    else:
        full_shape = None
    linear = None
    stride = 1
    for d in reversed(dims):
        wrapped = _wrap(indices[d], x.shape[d], check=checked)
        k = P["mul"](broadcast_to(wrapped, bshape), stride) if stride != 1 else broadcast_to(wrapped, bshape)
        linear = k if linear is None else P["add"](linear, k)
        stride *= x.shape[d]
    if full_shape is not None:
        out = P["full"](out_shape, 0, dtype=x.dtype, device=x.device)
    else:
        src = P["reshape"](xp, (flat_n,) + rest_shape)
        lin = P["reshape"](linear, (numel(bshape),) + (1,) * len(rest_shape)) if numel(bshape) != 0 else linear
        lin = broadcast_to(lin, (numel(bshape),) + rest_shape)
        out = P["reshape"](P["gather"](src, 0, lin), out_shape)
    if adjacent and dims[0] > 0:  # the broadcast dims stay where the indexed dims were
        nb = len(bshape)
        before = list(range(nb, nb + dims[0]))
        perm = before + list(range(nb)) + list(range(nb + dims[0], len(out_shape)))
        out = permute(out, perm)
    return out


class _DataDependent(Exception):
    pass


def _index_guard(fn):
    def decomp(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _DataDependent as e:
            from ..errors import UnsupportedGraph

            raise UnsupportedGraph(f"{e}: the result shape depends on tensor values") from e

    return decomp


register(aten.index.Tensor)(_index_guard(index))


@register(aten._unsafe_masked_index.default)
def unsafe_masked_index(x, mask, indices, fill):
    """x[indices] where mask holds, fill elsewhere; indices under a false mask may be out of range,
    so they are clamped into range before the gather (their values are never used)."""
    safe = []
    for d, t in enumerate(indices):
        if t is None:
            safe.append(None)
            continue
        n = x.shape[d]
        t = _wrap(t, n, check=False)
        safe.append(P["minimum"](P["maximum"](t, 0), max(n - 1, 0)))
    got = index(x, safe, checked=False)
    shape = tuple(got.shape)
    return P["where"](broadcast_to(mask, shape), got, convert(fill, x.dtype))


@register(aten.take.default)
def take(x, index):
    flat = view(x, (x.numel(),))
    wrapped = _wrap(index, x.numel(), check=False)  # index_select checks it
    return index_select(flat, 0, wrapped) if index.ndim == 1 else \
        view(index_select(flat, 0, view(wrapped, (index.numel(),))), index.shape)


@register(aten.embedding.default)
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    flat = P["reshape"](indices, (indices.numel(),)) if indices.ndim != 1 else indices
    rows = index_select(weight, 0, flat)
    return P["reshape"](rows, tuple(indices.shape) + tuple(weight.shape[1:])) if indices.ndim != 1 else rows


@register(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def masked_fill(x, mask, value):
    shape = broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    value = convert(value, x.dtype) if is_tensor_like(value) else convert(value, x.dtype)
    if is_tensor_like(value):
        value = broadcast_to(value, shape)
    return P["where"](broadcast_to(mask, shape), value, broadcast_to(x, shape))


@register(aten.index_fill.int_Scalar, aten.index_fill.int_Tensor)
def index_fill(x, dim, index, value):
    dim = _dim(dim, x.ndim)
    if x.ndim == 0:  # as one element, so the indices are still checked
        return P["reshape"](index_fill(P["reshape"](x, (1,)), 0, index, value), ())
    n, k = x.shape[dim], index.numel()
    if n == 0 and k and numel([s for d, s in enumerate(x.shape) if d != dim]):
        # eager raises for any index here (its view of x along dim needs storage x lacks): a check
        # that every index fails makes the wrapper rerun the graph eagerly, which raises that error
        P["check_index_all"](P["reshape"](convert(index, torch.int64), (k,)), 0)
    pos = P["iota"](n, start=0, step=1, dtype=torch.int64, device=x.device)
    idx = _wrap(P["reshape"](index, (k,)) if index.ndim != 1 else index, n)
    hit = P["amax"](P["eq"](P["broadcast_in_dim"](pos, (n, k), (0,)), P["broadcast_in_dim"](idx, (n, k), (1,))), (1,)) \
        if k else P["full"]((n,), False, dtype=torch.bool, device=x.device)
    mask = P["broadcast_in_dim"](hit, tuple(x.shape), (dim,))
    value = broadcast_to(convert(value, x.dtype), tuple(x.shape)) if is_tensor_like(value) else convert(value, x.dtype)
    return P["where"](mask, value, x)


def _split_sizes(x, dim, sizes):
    out, start = [], 0
    for s in sizes:
        out.append(slice_(x, dim, start, start + s))
        start += s
    return tuple(out)


@register(aten.split.Tensor, aten.unsafe_split.Tensor)
def split(x, split_size, dim=0):
    dim = _dim(dim, x.ndim)
    n = x.shape[dim]
    if split_size == 0:
        return (x,) if n == 0 else tuple()
    sizes = [min(split_size, n - s) for s in range(0, n, split_size)] or [0]
    return _split_sizes(x, dim, sizes)


@register(aten.split_with_sizes.default, aten.unsafe_split_with_sizes.default)
def split_with_sizes(x, split_sizes, dim=0):
    return _split_sizes(x, _dim(dim, x.ndim), split_sizes)


@register(aten.unbind.int)
def unbind(x, dim=0):
    dim = _dim(dim, x.ndim)
    return tuple(select(x, dim, i) for i in range(x.shape[dim]))


def _row_major_strides(x):
    return contiguous_strides(x.shape)


@register(aten.diagonal.default)
def diagonal(x, offset=0, dim1=0, dim2=1):
    d1, d2 = _dim(dim1, x.ndim), _dim(dim2, x.ndim)
    st = _row_major_strides(x)
    n = max(0, min(x.shape[d1] - max(-offset, 0), x.shape[d2] - max(offset, 0)))
    start = max(-offset, 0) * st[d1] + max(offset, 0) * st[d2] if n else 0
    keep = [d for d in range(x.ndim) if d not in (d1, d2)]
    shape = tuple(x.shape[d] for d in keep) + (n,)
    strides = tuple(st[d] for d in keep) + (st[d1] + st[d2],)
    if numel(shape) == 0:
        return P["full"](shape, 0, dtype=x.dtype, device=x.device)
    return P["as_strided"](x, shape, strides, start)


@register(aten.unfold.default)
def unfold(x, dimension, size, step):
    if x.ndim == 0:  # eager: one window of `size` (0 or 1) elements
        return P["reshape"](x, (1,)) if size else P["full"]((0,), 0, dtype=x.dtype, device=x.device)
    d = _dim(dimension, x.ndim)
    st = _row_major_strides(x)
    count = (x.shape[d] - size) // step + 1
    shape = tuple(count if i == d else s for i, s in enumerate(x.shape)) + (size,)
    strides = tuple(st[d] * step if i == d else s for i, s in enumerate(st)) + (st[d],)
    if numel(shape) == 0:
        return P["full"](shape, 0, dtype=x.dtype, device=x.device)
    return P["as_strided"](x, shape, strides, 0)


@register(aten.trace.default)
def trace(x):
    from .reductions import sum_

    return sum_(diagonal(x))


@register(aten.diag_embed.default)
def diag_embed(x, offset=0, dim1=-2, dim2=-1):
    n = x.shape[-1] + abs(offset)
    out_nd = x.ndim + 1
    d1, d2 = _dim(dim1, out_nd), _dim(dim2, out_nd)
    rows = P["iota"](n, start=0, step=1, dtype=torch.int64, device=x.device)
    # out[..., i, j] = x[..., min(i, j)] where j - i == offset (placed at dims d1, d2)
    i = P["broadcast_in_dim"](rows, (n, n), (0,))
    j = P["broadcast_in_dim"](rows, (n, n), (1,))
    on = P["eq"](P["sub"](j, i), offset)
    k = P["sub"](i, 0) if offset >= 0 else P["sub"](j, 0)
    k = P["where"](on, k, 0)
    batch = tuple(x.shape[:-1])
    big = batch + (n, n)
    src = P["reshape"](x, batch + (1, x.shape[-1])) if x.shape[-1] else x
    if numel(big) == 0 or x.shape[-1] == 0:
        out = P["full"](big, 0, dtype=x.dtype, device=x.device)
    else:
        flat_k = P["reshape"](k, (1,) * len(batch) + (n * n,))
        vals = P["gather"](broadcast_to(src, batch + (1, x.shape[-1])) if len(batch) else P["reshape"](x, (1, x.shape[-1])),
                           len(batch) + 1 if len(batch) else 1,
                           broadcast_to(P["reshape"](flat_k, (1,) * len(batch) + (1, n * n)), batch + (1, n * n))
                           if len(batch) else P["reshape"](k, (1, n * n)))
        vals = P["reshape"](vals, big)
        out = P["where"](broadcast_to(on, big), vals, convert(0, x.dtype))
    # move the two new dims from the end to (d1, d2)
    order, rest = [None] * out_nd, iter(range(len(batch)))
    order[d1], order[d2] = len(batch), len(batch) + 1
    order = [next(rest) if o is None else o for o in order]
    return permute(out, order)


def _triangle(upper):
    def decomp(x, diagonal=0):
        rows, cols = x.shape[-2], x.shape[-1]
        i = P["broadcast_in_dim"](P["iota"](rows, start=0, step=1, dtype=torch.int64, device=x.device), (rows, cols), (0,))
        j = P["broadcast_in_dim"](P["iota"](cols, start=0, step=1, dtype=torch.int64, device=x.device), (rows, cols), (1,))
        d = P["sub"](j, i)
        keep = P["ge"](d, diagonal) if upper else P["le"](d, diagonal)
        return P["where"](broadcast_to(keep, tuple(x.shape)), x, convert(0, x.dtype))

    return decomp


register(aten.tril.default)(_triangle(False))
register(aten.triu.default)(_triangle(True))


def _device(device):
    return torch.device(device) if device is not None else torch.device("cpu")


@register(aten.eye.default, aten.eye.m)
def eye(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=None):
    m = n if m is None else m
    dev, dtype = _device(device), dtype or torch.get_default_dtype()
    i = P["broadcast_in_dim"](P["iota"](n, start=0, step=1, dtype=torch.int64, device=dev), (n, m), (0,))
    j = P["broadcast_in_dim"](P["iota"](m, start=0, step=1, dtype=torch.int64, device=dev), (n, m), (1,))
    return convert(P["eq"](i, j), dtype)


@register(aten.arange.default, aten.arange.start, aten.arange.start_step)
def arange(*args, dtype=None, layout=None, device=None, pin_memory=None):
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
    dev = _device(device)
    if dtype is None:
        dtype = torch.get_default_dtype() if any(isinstance(v, float) for v in (start, end, step)) else torch.int64
    if any(is_symbolic(v) for v in (start, end, step)):  # arange(past, past + t): positions of new tokens
        if dtype.is_floating_point or step != 1 or not is_size(end - start):
            raise NotConcrete(f"arange({start}, {end}, {step}) of symbolic sizes")
        return P["iota"](end - start, start=start, step=1, dtype=dtype, device=dev)
    if not dtype.is_floating_point:  # eager casts start, end and step to the integer type first
        start, end, step = int(start), int(end), int(step)
        length = max(0, math.ceil((end - start) / step))
        return P["iota"](length, start=start, step=step, dtype=dtype, device=dev)
    length = max(0, math.ceil((end - start) / step))
    pos = P["convert_element_type"](P["iota"](length, start=0, step=1, dtype=torch.int64, device=dev), torch.float64)
    return convert(P["add"](P["mul"](pos, float(step)), float(start)), dtype)


def _int_ends(start, end, dtype):
    """Integer linspace/logspace: eager casts the end points to the integer type first."""
    if dtype.is_floating_point:
        return start, end
    cast = lambda v: convert(convert(v, torch.int64), torch.float64) if is_tensor_like(v) else int(v)  # noqa: E731
    return cast(start), cast(end)


def _linspace_values(start, end, steps, dev):
    """float64 values; start and end are Python numbers or 0-d tensors (the Tensor overloads)."""
    if is_tensor_like(start) or is_tensor_like(end):
        shape = (steps,)
        s = broadcast_to(P["reshape"](convert(start, torch.float64), ()), shape) if is_tensor_like(start) else \
            P["full"](shape, float(start), dtype=torch.float64, device=dev)
        e = broadcast_to(P["reshape"](convert(end, torch.float64), ()), shape) if is_tensor_like(end) else \
            P["full"](shape, float(end), dtype=torch.float64, device=dev)
        if steps == 1:
            return s
        pos = P["convert_element_type"](P["iota"](steps, start=0, step=1, dtype=torch.int64, device=dev), torch.float64)
        step = P["div"](P["sub"](e, s), float(steps - 1))
        lo = P["add"](P["mul"](pos, step), s)
        hi = P["sub"](e, P["mul"](P["sub"](float(steps - 1), pos), step))
        return P["where"](P["lt"](pos, float(steps // 2)), lo, hi)
    if steps == 1:
        return P["full"]((1,), float(start), dtype=torch.float64, device=dev)
    pos = P["convert_element_type"](P["iota"](steps, start=0, step=1, dtype=torch.int64, device=dev), torch.float64)
    step = (end - start) / (steps - 1)
    lo = P["add"](P["mul"](pos, step), float(start))
    hi = P["sub"](float(end), P["mul"](P["sub"](float(steps - 1), pos), step))
    return P["where"](P["lt"](pos, float(steps // 2)), lo, hi)


@register(aten.linspace.default, aten.linspace.Tensor_Tensor, aten.linspace.Tensor_Scalar, aten.linspace.Scalar_Tensor)
def linspace(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=None):
    dev, dtype = _device(device), dtype or torch.get_default_dtype()
    if steps == 0:
        return P["full"]((0,), 0, dtype=dtype, device=dev)
    if dtype.is_floating_point and not (is_tensor_like(start) or is_tensor_like(end)) and dtype != torch.float64:
        # eager computes float32 linspace in float32: start + i * step (and from the end for the upper half)
        return _linspace_in(start, end, steps, dtype, dev)
    start, end = _int_ends(start, end, dtype)
    vals = _linspace_values(start, end, steps, dev)
    if not dtype.is_floating_point:  # integer linspace truncates each value
        vals = P["trunc"](vals)
    return convert(vals, dtype)


def _linspace_in(start, end, steps, dtype, dev):
    if steps == 1:
        return P["full"]((1,), float(start), dtype=dtype, device=dev)
    pos = P["convert_element_type"](P["iota"](steps, start=0, step=1, dtype=torch.int64, device=dev), dtype)
    step = (end - start) / (steps - 1)
    lo = P["add"](P["mul"](pos, step), float(start))
    hi = P["sub"](float(end), P["mul"](P["sub"](float(steps - 1), pos), step))
    return P["where"](P["lt"](pos, float(steps // 2)), lo, hi)


@register(aten.logspace.default, aten.logspace.Tensor_Tensor, aten.logspace.Tensor_Scalar, aten.logspace.Scalar_Tensor)
def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, pin_memory=None):
    dev, dtype = _device(device), dtype or torch.get_default_dtype()
    if steps == 0:
        return P["full"]((0,), 0, dtype=dtype, device=dev)
    start, end = _int_ends(start, end, dtype)
    vals = P["pow"](float(base), _linspace_values(start, end, steps, dev))
    if not dtype.is_floating_point:
        vals = P["trunc"](vals)
    return convert(vals, dtype)


@register(aten.repeat.default)
def repeat(x, repeats):
    repeats = tuple(repeats)
    src = tuple([1] * (len(repeats) - x.ndim) + list(x.shape))
    inter = []
    for r, s in zip(repeats, src):
        inter += [r, s]
    y = P["broadcast_in_dim"](P["reshape"](x, src), tuple(inter), tuple(range(1, 2 * len(src), 2)))
    return P["reshape"](y, tuple(r * s for r, s in zip(repeats, src)))


@register(aten.pixel_shuffle.default)
def pixel_shuffle(x, r):
    *b, c, h, w = x.shape
    y = P["reshape"](x, tuple(b) + (c // (r * r), r, r, h, w))
    n = len(b)
    y = permute(y, list(range(n)) + [n, n + 3, n + 1, n + 4, n + 2])
    return P["reshape"](y, tuple(b) + (c // (r * r), h * r, w * r))


@register(aten.pixel_unshuffle.default)
def pixel_unshuffle(x, r):
    *b, c, h, w = x.shape
    n = len(b)
    y = P["reshape"](x, tuple(b) + (c, h // r, r, w // r, r))
    y = permute(y, list(range(n)) + [n, n + 2, n + 4, n + 1, n + 3])
    return P["reshape"](y, tuple(b) + (c * r * r, h // r, w // r))


@register(aten.channel_shuffle.default, aten.native_channel_shuffle.default)
def channel_shuffle(x, groups):
    b, c, *rest = x.shape
    y = P["reshape"](x, (b, groups, c // groups) + tuple(rest))
    y = permute(y, [0, 2, 1] + list(range(3, y.ndim)))
    return P["reshape"](y, tuple(x.shape))


@register(aten.slice_backward.default)
def slice_backward(grad, input_sizes, dim, start, end, step):
    """The gradient of x[start:end:step] along dim: grad placed in zeros of the input's shape."""
    zeros = P["full"](tuple(input_sizes), convert(0, grad.dtype), dtype=grad.dtype, device=grad.device)
    return slice_scatter(zeros, grad, dim, start, end, step)


@register(aten.select_backward.default)
def select_backward(grad, input_sizes, dim, index):
    """The gradient of x.select(dim, index) (and of `a, b, c = x` unpacking): grad placed in zeros
    of the input's shape, so it fuses with its consumer instead of filling a buffer."""
    zeros = P["full"](tuple(input_sizes), convert(0, grad.dtype), dtype=grad.dtype, device=grad.device)
    return select_scatter(zeros, grad, dim, index)


@register(aten.slice_scatter.default)
def slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    dim = _dim(dim, x.ndim)
    n = x.shape[dim]
    start = 0 if start is None else (start + n if start < 0 else start)
    end = n if end is None else (end + n if end < 0 else end)
    start, end = min(max(start, 0), n), min(max(end, start), n)
    if src.numel() == 0:
        return x
    config = [(0, 0, 0)] * x.ndim
    placed_end = start + (src.shape[dim] - 1) * step + 1
    config[dim] = (start, n - placed_end, step - 1)
    src = convert(src, x.dtype)
    spread = P["pad"](src, convert(0, x.dtype), tuple(config))
    pos = P["iota"](n, start=0, step=1, dtype=torch.int64, device=x.device)
    hit = P["logical_and"](P["logical_and"](P["ge"](pos, start), P["lt"](pos, placed_end)),
                           P["eq"](P["fmod"](P["sub"](pos, start), step), 0) if step > 1 else P["ge"](pos, start))
    mask = P["broadcast_in_dim"](hit, tuple(x.shape), (dim,))
    return P["where"](mask, spread, x)


@register(aten.select_scatter.default)
def select_scatter(x, src, dim, index):
    """x with src at `index` along dim: where(position == index, src broadcast along dim, x). Every
    load of src is in bounds, so the kernel needs no padding checks (slice_scatter's general form)."""
    dim = _dim(dim, x.ndim)
    n = x.shape[dim]
    index = index + n if index < 0 else index
    if numel(x.shape) == 0:
        return x
    spread = P["broadcast_in_dim"](convert(src, x.dtype), tuple(x.shape), tuple(d for d in range(x.ndim) if d != dim))
    pos = P["iota"](n, start=0, step=1, dtype=torch.int64, device=x.device)
    mask = P["broadcast_in_dim"](P["eq"](pos, index), tuple(x.shape), (dim,))
    return P["where"](mask, spread, x)


def _empty(shape, dtype, device):
    return P["empty"](tuple(shape), dtype=dtype or torch.get_default_dtype(), device=_device(device))


@register(aten.empty.memory_format)
def empty(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _empty(size, dtype, device)


@register(aten.empty_strided.default)
def empty_strided(size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _empty(size, dtype, device)


@register(aten.empty_permuted.default)
def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _empty(size, dtype, device)


@register(aten.empty_like.default)
def empty_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _empty(x.shape, dtype or x.dtype, device or x.device)


@register(aten.new_empty.default)
def new_empty(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _empty(size, dtype or x.dtype, device or x.device)


@register(aten.new_empty_strided.default)
def new_empty_strided(x, size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _empty(size, dtype or x.dtype, device or x.device)


@register(aten.fill.Scalar, aten.fill.Tensor)
def fill(x, value):
    if is_tensor_like(value):
        return broadcast_to(convert(value, x.dtype), tuple(x.shape))
    return P["full"](tuple(x.shape), convert(value, x.dtype), dtype=x.dtype, device=x.device)


@register(aten.zero.default)
def zero(x):
    return P["full"](tuple(x.shape), convert(0, x.dtype), dtype=x.dtype, device=x.device)


@register(aten.block_diag.default)
def block_diag(tensors):
    dtype = result_type(*tensors)
    mats = [P["reshape"](t, (1, t.numel())) if t.ndim == 1 else (P["reshape"](t, (1, 1)) if t.ndim == 0 else t)
            for t in tensors]
    width = sum(m.shape[1] for m in mats)
    rows, col = [], 0
    for m in mats:
        rows.append(P["pad"](convert(m, dtype), convert(0, dtype), ((0, 0, 0), (col, width - col - m.shape[1], 0))))
        col += m.shape[1]
    return rows[0] if len(rows) == 1 else P["cat"](rows, 0)


@register(aten.narrow_copy.default)
def narrow_copy(x, dim, start, length):
    return slice_(x, dim, start, start + length)


def _copy_variants():
    """`<view>_copy` ops compute what their views do (values are immutable here)."""
    from . import views as v

    table = {
        "view_copy.default": v.view, "permute_copy.default": v.permute, "t_copy.default": v.t,
        "transpose_copy.int": v.transpose, "expand_copy.default": v.expand, "alias_copy.default": v.identity,
        "squeeze_copy.default": v.squeeze, "squeeze_copy.dim": v.squeeze, "squeeze_copy.dims": v.squeeze,
        "unsqueeze_copy.default": v.unsqueeze, "diagonal_copy.default": diagonal, "unbind_copy.int": unbind,
        "unfold_copy.default": unfold, "split_with_sizes_copy.default": split_with_sizes,
        "split_copy.Tensor": split, "select_copy.int": v.select, "slice_copy.Tensor": v.slice_,
        "detach_copy.default": v.identity,
    }
    for spec, fn in table.items():
        packet, ov = spec.split(".")
        register(getattr(getattr(aten, packet), ov))(fn)


_copy_variants()


def as_strided_of_own_storage(x, storage_strides, size, stride, storage_offset=None):
    """aten.as_strided on a tensor that owns its storage (a fresh op result: offset 0, nothing else in
    it), whose eager strides are `storage_strides` (prims Values are row-major). Storage order is x's
    dims sorted by stride, so when x is dense, permuting to that order gives row-major elements =
    storage elements, and kiln.as_strided reads them. Otherwise None (fallback). Eager does this after
    adaptive_avg_pool2d to 1x1 on channels-last input."""
    size, stride, offset = tuple(size), tuple(stride), storage_offset or 0
    order = sorted(range(x.ndim), key=lambda d: -storage_strides[d])
    storage_shape = tuple(x.shape[d] for d in order)
    dense = all(storage_strides[d] == s for d, s in zip(order, contiguous_strides(storage_shape)) if x.shape[d] != 1)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if not dense or numel(size) == 0 or last >= numel(x.shape) or min(stride, default=0) < 0:
        return None
    return P["as_strided"](permute(x, order), size, stride, offset)


# ATen ops with a decomposition valid only when their input owns its storage (prims/decompose.py checks);
# each takes the input's eager strides after the input. as_strided_copy reads storage as as_strided does.
OWN_STORAGE_DECOMPOSITIONS = {torch.ops.aten.as_strided.default: as_strided_of_own_storage,
                              torch.ops.aten.as_strided_copy.default: as_strided_of_own_storage}
