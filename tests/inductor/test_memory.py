"""Memory planning against eager: the planned peak never exceeds eager's, buffers are reused and
freed, and fusing into an earlier kernel is undone when it would raise the peak."""
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln.backend import compile_graph
from kiln.inductor.memory import Alloc, Free, eager_peak_bytes, peak_bytes


def _compile(fn, *inputs):
    return compile_graph(fx.symbolic_trace(fn), list(inputs), target="cpp")


def _mlp(x, w1, w2, g, b):
    return F.layer_norm(F.gelu(x @ w1) @ w2 + x, (x.shape[-1],), g, b)


def _attention(x, wq, wk, wv):
    q, k, v = (x @ wq).view(2, 16, 4, 8).transpose(1, 2), (x @ wk).view(2, 16, 4, 8).transpose(1, 2), \
        (x @ wv).view(2, 16, 4, 8).transpose(1, 2)
    return (torch.softmax(q @ k.transpose(-2, -1), -1) @ v).transpose(1, 2).reshape(2, 16, 32)


def _chain(x, w):
    for _ in range(4):
        x = torch.relu(x @ w) + x.sin()
    return x.sum(0)


_G = torch.Generator().manual_seed(0)


def randn(*shape):
    return torch.randn(*shape, generator=_G)


GRAPHS = {
    "mlp": (_mlp, [randn(16, 32), randn(32, 128), randn(128, 32), randn(32), randn(32)]),
    "attention": (_attention, [randn(2, 16, 32)] + [randn(32, 32) for _ in range(3)]),
    "chain": (_chain, [randn(64, 64), randn(64, 64) / 8]),  # / 8: values stay O(1), sin stays tame
    "softmax": (lambda x: torch.softmax(x * 2, -1), [randn(64, 300)]),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_planned_peak_is_at_most_eagers(name):
    fn, inputs = GRAPHS[name]
    c = _compile(fn, *inputs)
    assert 0 < peak_bytes(c.steps) <= eager_peak_bytes(c.aten_gm)
    torch.testing.assert_close(c.call(*inputs), fn(*inputs))


def test_chain_reuses_freed_buffers():
    fn, inputs = GRAPHS["chain"]
    c = _compile(fn, *inputs)
    reused = [s for s in c.steps if isinstance(s, Alloc) and s.reuse]
    assert reused and any(isinstance(s, Free) for s in c.steps)


def test_fusing_into_an_earlier_kernel_is_undone_when_it_raises_the_peak():
    def f(x, w):
        y = torch.relu(x) @ w
        s = y[:, :100].sum()  # a kernel sigmoid(x) cannot join
        z = torch.sigmoid(x) @ w  # sigmoid(x) could join relu(x)'s kernel, but would then live across y
        return s, z

    x, w = torch.randn(256, 256), torch.randn(256, 256)
    c = _compile(f, x, w)
    eager = eager_peak_bytes(c.aten_gm)
    assert peak_bytes(c.steps) <= eager <= 2 * 256 * 256 * 4 + 64
    assert any("fusion window 1" in r for r in c.schedule.not_fused)
    torch.testing.assert_close(c.call(x, w), f(x, w))


def test_eager_peak_counts_views_as_their_base():
    c = _compile(lambda x: (x * 2).t().reshape(-1).sum(), torch.randn(64, 64))
    assert eager_peak_bytes(c.aten_gm) >= 64 * 64 * 4


def test_kernel_locals_are_never_freed_by_the_plan():
    """Without scratch rows (Triton), a kernel-local value is reused by later loop groups: it is
    not a buffer the wrapper holds, so the plan must not free it (a `del` of an unbound name)."""
    from kiln.inductor import lower, schedule
    from kiln import prims

    fn = lambda x: torch.softmax(torch.logsumexp(x, 0), -1)  # noqa: E731
    x = randn(1, 5)
    gm = prims.lower(fx.symbolic_trace(fn), [x])
    graph = lower(gm, [x])
    plan = schedule(graph, eager_peak_bytes(gm), scratch=False)
    (kernel,) = plan.kernels
    internal = {n.name for n in kernel.nodes if not n.stored}
    assert internal and not (kernel.reads() & internal)
    allocated = {s.name for s in plan.steps if isinstance(s, Alloc)}
    assert all(s.name in allocated for s in plan.steps if isinstance(s, Free))
