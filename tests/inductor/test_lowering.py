"""Prims -> loop IR: views are index remaps, reused values are realized, externs get strided views."""
import torch

from kiln.inductor.ir.buffers import ComputedBuffer, ExternBuffer, Pointwise, Reduction
from kiln_testing import lower


def computed(graph):
    return [b for b in graph.buffers.values() if isinstance(b, ComputedBuffer)]


def test_views_do_not_copy():
    def f(x):
        return (x.t().unsqueeze(0).expand(2, 4, 3)[:, 1:3] * 2).sum()

    graph, _ = lower(f, torch.randn(3, 4))
    bufs = computed(graph)
    assert len(bufs) == 1 and isinstance(bufs[0].data, Reduction)  # one reduction reading x through the views


def test_pointwise_chain_is_one_buffer():
    graph, _ = lower(lambda x, y: ((x.sin() + y) * 3).relu().exp(), torch.randn(4, 5), torch.randn(4, 5))
    bufs = computed(graph)
    assert len(bufs) == 1 and isinstance(bufs[0].data, Pointwise)


def test_costly_value_used_twice_is_realized_once():
    def f(x):
        y = x.sin().cos().exp().tanh().sigmoid()
        return y.sum(1), y.amax(1)

    graph, _ = lower(f, torch.randn(4, 8))
    pointwise = [b for b in computed(graph) if isinstance(b.data, Pointwise)]
    assert len(pointwise) == 1


def test_matmul_reads_a_transposed_input_without_copying():
    graph, _ = lower(lambda x, w: x @ w.t(), torch.randn(4, 8), torch.randn(6, 8))
    (mm,) = [b for b in graph.buffers.values() if isinstance(b, ExternBuffer)]
    assert not computed(graph)
    assert mm.args[1].strides == (1, 8)


def test_output_keeps_eager_strides():
    graph, _ = lower(lambda x: (x + 1).t(), torch.randn(3, 5))
    out = graph.buffers[graph.outputs[0].value]
    assert out.layout.strides == (1, 5)


def test_keepdim_reduction_output_is_a_view_not_a_copy():
    graph, _ = lower(lambda x: x.sum(1, keepdim=True), torch.randn(3, 5))
    assert graph.outputs[0].kind == "view"
    assert len(computed(graph)) == 1


def test_loop_ir_prints():
    graph, _ = lower(lambda x: x.exp() + 1, torch.randn(2, 3))
    text = repr(graph)
    assert "pointwise i[2, 3]" in text and "exp(" in text and "load(x, 3*i0 + i1)" in text


def test_transposed_matmul_operand_is_written_in_its_sources_order():
    # k^T for q @ k^T: realized with the last two dims swapped, so the copy reads and writes
    # contiguously and the bmm gets a transposed operand (BLAS takes it as is)
    def f(q, k):
        k = (k + 1).view(2, 8, 4, 4).transpose(1, 2)  # [2, 4, 8, 4]
        return q @ k.transpose(-2, -1)

    graph, s = lower(f, torch.randn(2, 4, 8, 4), torch.randn(2, 8, 16))
    (mm,) = [b for b in graph.buffers.values() if isinstance(b, ExternBuffer)]
    kt = graph.buffers[mm.args[1].buffer]
    assert mm.args[1].strides[-2:] == (1, 4) and kt.data.order is not None
    assert kt.store_index() == kt.data.syms()[0] * 32 + kt.data.syms()[1] * 4 + kt.data.syms()[2]  # memory order


def test_output_with_eager_transposed_strides_is_written_in_memory_order():
    graph, _ = lower(lambda x: (x + 1).t(), torch.randn(3, 5))
    out = graph.buffers[graph.outputs[0].value]
    i0, i1 = out.data.syms()
    assert out.layout.shape == (5, 3) and out.data.ranges == (3, 5) and out.store_index() == i0 * 5 + i1
