"""Attention as one library call: softmax(q @ k^T * scale) @ v -> scaled_dot_product_attention.

After lowering, attention is a matmul (scores), a softmax over the scores' last dim (a max and a
sum reduction and the pointwise exp and division, possibly through a view of the scores) and a
matmul of the probabilities with v. When the buffers have exactly that shape, the last matmul
becomes a call of torch's fused attention kernel (flash attention on CPU: no scores matrix in
memory); the scheduler then drops the unread scores, softmax and probability buffers. Like
inductor's pattern, it leaves masks, dropout and anything else to the general path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .ir.buffers import ComputedBuffer, ExternBuffer, Pointwise, Reduction, TensorArg
from .ir.index import floordiv
from .ir.loop import LoopOp, ReductionType


class Attention:
    """q [N, L, E], k [N, S, E], v [N, S, Ev] -> [N, L, Ev] (contiguous), as softmax(q k^T scale) v."""

    def __call__(self, q, k, v, scale):
        out = F.scaled_dot_product_attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), scale=scale)[0]
        return out.contiguous()

    def __repr__(self):
        return "scaled_dot_product_attention"


attention = Attention()


def fuse_attention(graph) -> int:
    """Rewrite every matched attention in graph.buffers whose scores, softmax and probabilities
    nothing else reads (a training forward saves the probabilities for the backward: then they are
    computed anyway, and the fused call would only repeat their work); returns how many."""
    count = 0
    readers = _readers(graph)
    kept = graph.output_buffers()
    for name, buf in list(graph.buffers.items()):
        if isinstance(buf, ExternBuffer) and buf.kind == "matmul" and buf.layout.dtype == torch.float32:
            match = _match(graph, buf)
            if match is not None and _dies(match[3], name, readers, kept):
                q, k, scale, _ = match
                graph.buffers[name] = ExternBuffer(name, buf.layout, "fallback", (q, k, buf.args[1]),
                                                   {"scale": scale}, op=attention)
                count += 1
    return count


def _is_whole(arg, buf) -> bool:
    """Is arg all of buf, both contiguous (possibly under another shape)?"""
    numel = 1
    for s in arg.shape:
        numel *= s
    return (isinstance(arg, TensorArg) and arg.offset == 0 and arg.strides == _contiguous(arg.shape)
            and buf.layout.strides == _contiguous(buf.layout.shape) and numel == buf.layout.storage_size())


def _contiguous(shape):
    from kiln.prims.meta import contiguous_strides

    return tuple(contiguous_strides(shape))


def _computed(graph, name, kind):
    buf = graph.buffers.get(name)
    if isinstance(buf, ComputedBuffer) and isinstance(buf.data, kind) and buf.layout.strides == _contiguous(buf.layout.shape):
        return buf
    return None


def _match(graph, out):
    """(q, k, scale, the intermediate buffers' names) if `out` = softmax(q @ k^T * scale) @ v over
    contiguous 3-d buffers, else None."""
    p_arg, v_arg = out.args
    p = _computed(graph, p_arg.buffer, Pointwise) if isinstance(p_arg, TensorArg) else None
    if p is None or len(out.layout.shape) != 3 or not _is_whole(p_arg, p) or not isinstance(v_arg, TensorArg):
        return None
    n_keys = p.layout.shape[-1]
    own, row = p.store_index(), floordiv(p.store_index(), n_keys)
    body = p.data.body  # e / sum(e), e = exp(x - max(x)) (e realized or inline)
    if body.op is not LoopOp.TRUEDIV or not _loads(body.args[1], row):
        return None
    total = graph.buffers[body.args[1].attr[0]]
    e = body.args[0]  # exp(x - max) is costly and read twice, so it is a buffer of its own
    e_buf = _computed(graph, e.attr[0], Pointwise) if _loads(e, own) else None
    if e_buf is None or e_buf.layout.storage_size() != p.layout.storage_size() or e_buf.layout.shape[-1] != n_keys:
        return None
    e, own, row = e_buf.data.body, e_buf.store_index(), floordiv(e_buf.store_index(), n_keys)
    if e.op is not LoopOp.EXP or e.args[0].op is not LoopOp.SUB:
        return None
    x, mx = e.args[0].args
    scores = _scores(graph, x, own)
    if scores is None or not _loads(mx, row):
        return None
    s_buf, scale = scores
    m_buf = _computed(graph, mx.attr[0], Reduction)
    z_buf = _computed(graph, total.name, Reduction)
    if m_buf is None or z_buf is None or m_buf.data.reduction_type is not ReductionType.MAX \
            or z_buf.data.reduction_type is not ReductionType.SUM or m_buf.data.reduction_ranges != (n_keys,) \
            or z_buf.data.reduction_ranges != (n_keys,):
        return None
    m_idx = _flat(m_buf.data)
    if _scores(graph, m_buf.data.body, m_idx) != (s_buf, scale):
        return None
    if not (_loads(z_buf.data.body, _flat(z_buf.data)) and z_buf.data.body.attr[0] == e_buf.name):
        return None
    q_arg, kt_arg = s_buf.args
    if not (isinstance(q_arg, TensorArg) and isinstance(kt_arg, TensorArg)) or len(kt_arg.shape) != 3:
        return None
    k_arg = TensorArg(kt_arg.buffer, (kt_arg.shape[0], kt_arg.shape[2], kt_arg.shape[1]),
                      (kt_arg.strides[0], kt_arg.strides[2], kt_arg.strides[1]), kt_arg.offset)
    return q_arg, k_arg, scale, {s_buf.name, m_buf.name, e_buf.name, z_buf.name, p.name}


def _readers(graph) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, buf in graph.buffers.items():
        for read in buf.reads():
            found.setdefault(read, set()).add(name)
    return found


def _dies(chain: set, out: str, readers, kept) -> bool:
    """Whether the attention's intermediate buffers are read only by each other and its output."""
    return not (chain & kept) and all(readers.get(b, set()) <= chain | {out} for b in chain)


def _loads(node, index) -> bool:
    return node.op is LoopOp.LOAD and node.attr[1] == index


def _flat(red: Reduction):
    from .ir.index import strided_index

    syms = list(red.syms()) + list(red.rsyms())
    return strided_index(syms, _contiguous(red.ranges + red.reduction_ranges))


def _scores(graph, x, index):
    """(scores matmul buffer, scale) if x is scores[index] or scores[index] * constant."""
    scale = 1.0
    if x.op is LoopOp.MUL and x.args[1].op is LoopOp.CONSTANT:
        x, scale = x.args[0], float(x.args[1].attr)
    if x.op is not LoopOp.LOAD or x.attr[1] != index:
        return None
    s_buf = graph.buffers.get(x.attr[0])
    if not (isinstance(s_buf, ExternBuffer) and s_buf.kind == "matmul" and len(s_buf.layout.shape) == 3
            and s_buf.layout.strides == _contiguous(s_buf.layout.shape)):
        return None
    return s_buf, scale

