"""Fusion decisions, asserted as kernel counts, and the memory plan."""
import torch
import torch.nn.functional as F

from kiln.inductor.memory import Alloc, Free, peak_bytes, plan_memory
from kiln_testing import kernels, lower


def outputs_of(graph):
    return {o.value if o.kind == "buffer" else o.value[0] for o in graph.outputs if o.kind in ("buffer", "view")}


def test_pointwise_chain_is_one_kernel():
    _, s = lower(lambda x, y: ((x * y).sin() + 1).relu() / (y.abs() + 1), torch.randn(64, 33), torch.randn(64, 33))
    assert len(kernels(s)) == 1


def test_softmax_is_one_kernel():
    _, s = lower(lambda x: torch.softmax(x, -1), torch.randn(16, 100))
    (k,) = kernels(s)
    assert k.outer == (16,) and k.inner == (100,)


def test_layer_norm_is_one_kernel():
    _, s = lower(lambda x, w, b: F.layer_norm(x, (64,), w, b), torch.randn(8, 64), torch.randn(64), torch.randn(64))
    assert len(kernels(s)) == 1


def test_independent_reductions_share_a_loop():
    _, s = lower(lambda x: (x.sum(1), x.amax(1), x.mean(1)), torch.randn(32, 50))
    (k,) = kernels(s)
    assert [g.level for g in k.groups].count("r") == 1  # horizontal fusion: one pass over each row


def test_reductions_over_different_dims_do_not_fuse_and_say_why():
    _, s = lower(lambda x: (x.sum(0), x.sum(1)), torch.randn(32, 50))
    assert len(kernels(s)) == 2
    assert any("does not fit" in r for r in s.not_fused)
    assert "not fused" in repr(s)


def test_reduction_results_used_in_kernel_stay_local():
    _, s = lower(lambda x: torch.softmax(x, -1), torch.randn(16, 100))
    (k,) = kernels(s)
    stored = [n for n in k.nodes if n.stored]
    assert len(stored) == 1  # only the output; max and sum live in registers


def test_memory_plan_frees_and_reuses():
    def f(x, w1, w2, w3):
        h = torch.relu(x @ w1)
        h = torch.relu(h @ w2)
        return h @ w3

    graph, s = lower(f, torch.randn(8, 16), torch.randn(16, 16), torch.randn(16, 16), torch.randn(16, 16))
    steps = plan_memory(s.items, outputs_of(graph), graph.buffers)
    frees = [st.name for st in steps if isinstance(st, Free)]
    reused = [st for st in steps if isinstance(st, Alloc) and st.reuse]
    assert reused, steps  # same-size intermediates share storage
    assert all(n not in frees for n in outputs_of(graph))
    # peak planned bytes stay at or below eager's: at most two 8x16 intermediates + the output live at once
    assert peak_bytes(steps) <= 3 * 8 * 16 * 4


def test_scheduling_is_linear_in_graph_size():
    def chain(x):
        for i in range(300):
            x = (x * 1.01 + 0.5).sum(1, keepdim=True) + x if i % 3 == 0 else x.sin() + 1
        return x

    graph, s = lower(chain, torch.randn(4, 8))
    assert len(graph.buffers) > 100
    assert len(kernels(s)) < len(graph.buffers)


def test_softmax_after_a_batched_matmul_is_one_kernel_across_the_reshape():
    # scores are [B*H, S, S] for the bmm but [B, H, S, S] for softmax: the loops still line up
    def f(q, k):
        return torch.softmax((q @ k).view(2, 4, 16, 16), -1)

    _, s = lower(f, torch.randn(8, 16, 8), torch.randn(8, 8, 16))
    (k,) = kernels(s)
    assert k.outer == (128,) and k.inner == (16,)  # rows merged into one loop


def test_costly_value_shared_by_two_inner_loops_is_a_scratch_row():
    _, s = lower(lambda x: torch.softmax(x, -1), torch.randn(16, 100))
    (k,) = kernels(s)
    scratch = [n for n in k.nodes if n.scratch]
    assert len(scratch) == 1 and not scratch[0].stored  # exp(x - max): computed once, kept on the stack
    assert "scratch row" in repr(s)


def test_cheap_value_shared_by_two_inner_loops_is_recomputed():
    _, s = lower(lambda x: F.layer_norm(x, (64,)), torch.randn(8, 64))
    (k,) = kernels(s)
    assert not any(n.scratch for n in k.nodes) and [n.stored for n in k.nodes].count(True) == 1


def test_contiguous_loops_merge():
    _, s = lower(lambda x: (x * 2).sum(), torch.randn(64, 128))
    (k,) = kernels(s)
    assert k.outer == () and k.inner == (64 * 128,)


def test_unread_buffers_are_dropped():
    import kiln.inductor.lowering.reductions as R

    _, s = lower(lambda x: x.var(0), torch.randn(16, 40))  # strided: Welford, so sum(x) is unread
    assert any("dropped" in r for r in s.not_fused)
    assert [n.reduction.value for k in kernels(s) for n in k.nodes if n.reduction] == ["welford"]
    assert R.WELFORD_MIN > 16 * 40
