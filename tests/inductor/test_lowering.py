"""Prims -> loop IR: views are index remaps, reused values are realized, externs get strided views."""
import torch

from inductor.ir.buffers import ComputedBuffer, ExternBuffer, Pointwise, Reduction
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
