"""Indirect loads (gathers, concatenation, padding) through lowering, scheduling and C++."""
import torch

from kiln.backend import compile_graph
from kiln.inductor.ir.loop import LoopOp, walk
from kiln_testing import check, kernels, lower


def _ops(schedule):
    return {n.op for k in kernels(schedule) for node in k.nodes for n in walk(node.body)}


def test_gather_of_a_computed_value_is_not_fused_with_its_producer():
    """An indirect read may land on any element: its producer must be finished (another kernel)."""
    idx = torch.tensor([[2, 0, 1, 4, 4], [1, 1, 0, 3, 2]])  # same shape as x: only the indirection keeps them apart
    graph, s = lower(lambda x, i: torch.gather(x.sin(), 1, i) * 2, torch.randn(2, 5), idx)
    assert LoopOp.INDIRECT_LOAD in _ops(s)
    assert len(kernels(s)) == 2 and any("computed offsets" in r for r in s.not_fused)


def test_cat_and_pad_read_inputs_under_masks_and_match_eager():
    fn = lambda x, y: (torch.cat([x, y.exp()], 1), torch.nn.functional.pad(x, (2, -1, 1, 1), value=7.0))  # noqa: E731
    x, y = torch.randn(3, 4), torch.randn(3, 2)
    graph, s = lower(fn, x, y)
    masked = [n for k in kernels(s) for node in k.nodes for n in walk(node.body)
              if n.op is LoopOp.INDIRECT_LOAD and len(n.args) == 2]
    assert masked  # every read that may fall outside its source is masked
    import torch.fx as fx

    compiled = compile_graph(fx.symbolic_trace(fn), [x, y], target="cpp")
    check(compiled.call, fn, x, y)


def test_advanced_indexing_with_negative_indices():
    import torch.fx as fx

    fn = lambda x, i, j: x[i, :, j] + 1  # noqa: E731
    x, i, j = torch.randn(4, 3, 5), torch.tensor([0, -1, 2]), torch.tensor([[4], [-5]])
    compiled = compile_graph(fx.symbolic_trace(fn), [x, i, j], target="cpp")
    check(compiled.call, fn, x, i, j)
