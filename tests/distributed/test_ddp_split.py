"""kiln.compile(DistributedDataParallel(model)): the wrapped module's graph split at DDP's buckets
(capture/distributed.py), in one process (a gloo group of 1: DDP's reducer and hooks still run)."""
import copy
import socket

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

import kiln
from kiln.capture import distributed
from kiln.cli import explain_report

pytestmark = pytest.mark.usefixtures("fresh")


@pytest.fixture(scope="module", autouse=True)
def group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture
def fresh():
    torch._dynamo.reset()
    kiln.reset()
    yield


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32), nn.GELU(),
                         nn.Linear(32, 4))


def _train_step(model, x):
    out = model(x)
    out.square().mean().backward()
    return out


def test_graph_split_at_buckets_matches_eager(monkeypatch):
    monkeypatch.setattr(kiln.config, "strict", True)
    eager = DDP(_mlp(), bucket_cap_mb=0.004)  # 4 KB: about one 32x32 layer per bucket
    compiled = kiln.compile(DDP(copy.deepcopy(eager.module), bucket_cap_mb=0.004))
    for seed in range(2):
        x = torch.randn(8, 16, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(_train_step(compiled, x), _train_step(eager, x))
    for p, q in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    (split,) = distributed.ddp_splits()
    assert len(split.buckets) >= 3, str(split)
    assert len(split.pieces) == len(split.buckets)  # each compiled on its own
    assert sum(len(b.params) for b in split.buckets) == 8  # every parameter in one bucket
    # walking backwards, a bucket closes once full: all but the first (in forward order) are full
    assert all(b.nbytes >= split.bucket_cap for b in split.buckets[1:]), str(split)
    assert kiln.records.backend_records() and all(r.compiled for r in kiln.records.backend_records())


def test_buckets_reduced_while_backward_runs():
    """DDP's communication hook for a late bucket runs before the backward reaches the first layers
    (the input's gradient); with one bucket (no split) only after."""
    events = []

    def comm_hook(state, bucket):
        events.append("all-reduce")
        fut = torch.futures.Future()
        fut.set_result(bucket.buffer())
        return fut

    for cap, expect_overlap in ((0.004, True), (100, False)):
        events.clear()
        torch._dynamo.reset()
        kiln.reset()
        model = DDP(_mlp(), bucket_cap_mb=cap)
        model.register_comm_hook(None, comm_hook)
        compiled = kiln.compile(model)
        for _ in range(2):  # DDP's first backward uses one bucket, then rebuilds them in gradient order
            events.clear()
            x = torch.randn(8, 16, requires_grad=True)
            x.register_hook(lambda g: events.append("input grad"))
            _train_step(compiled, x)
        assert "input grad" in events and "all-reduce" in events, events
        overlapped = events.index("all-reduce") < events.index("input grad")
        assert overlapped == expect_overlap, (cap, events)


def test_explain_and_dump_show_the_split(tmp_path, monkeypatch):
    monkeypatch.setattr(kiln.config, "dump_dir", tmp_path)
    compiled = kiln.compile(DDP(_mlp(), bucket_cap_mb=0.004))
    _train_step(compiled, torch.randn(8, 16))
    report = explain_report()
    assert "split at DDP's buckets into" in report, report
    assert "graph 0:" in report and "parameter(s)" in report, report
    (written,) = tmp_path.glob("ddp_split_*.txt")
    assert "submod_0" in written.read_text() and "split at DDP's buckets" in written.read_text()


def test_one_bucket_is_not_split():
    compiled = kiln.compile(DDP(_mlp()))  # the default 25 MB bucket holds the whole model
    _train_step(compiled, torch.randn(8, 16))
    (split,) = distributed.ddp_splits()
    assert len(split.buckets) == 1 and split.pieces


def test_ignored_and_frozen_parameters_take_no_bucket_space():
    model = _mlp()
    model[0].weight.requires_grad_(False)
    DDP._set_params_and_buffers_to_ignore_for_model(model, ["2.weight"])
    compiled = kiln.compile(DDP(model, bucket_cap_mb=0.004))
    _train_step(compiled, torch.randn(8, 16))
    (split,) = distributed.ddp_splits()
    bucketed = [name for b in split.buckets for name in b.params]
    assert not any("0_weight" in n or "2_weight" in n for n in bucketed), bucketed
    assert len(bucketed) == 6


class _Branchy(nn.Module):
    """A layer used only on some calls: DDP's find_unused_parameters must mark it ready."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.unused = nn.Linear(16, 32), nn.Linear(32, 4), nn.Linear(32, 4)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


@pytest.mark.parametrize("kwargs", [{"find_unused_parameters": True}, {"static_graph": True}, {"gradient_as_bucket_view": True}])
def test_ddp_options_match_eager(kwargs, monkeypatch):
    monkeypatch.setattr(kiln.config, "strict", True)
    torch.manual_seed(0)
    module = _mlp() if kwargs.get("gradient_as_bucket_view") else _Branchy()  # unused parameters need the others
    eager = DDP(copy.deepcopy(module), bucket_cap_mb=0.004, **kwargs)
    compiled_ddp = DDP(module, bucket_cap_mb=0.004, **kwargs)
    compiled = kiln.compile(compiled_ddp)
    for step in range(3):
        x = torch.randn(8, 16, generator=torch.Generator().manual_seed(step))
        torch.testing.assert_close(_train_step(compiled, x), _train_step(eager, x))
        for p, q in zip(compiled_ddp.parameters(), eager.parameters()):
            torch.testing.assert_close(p.grad, q.grad)
            p.grad = q.grad = None


def test_no_sync_accumulates_like_eager():
    torch.manual_seed(0)
    eager = DDP(_mlp(), bucket_cap_mb=0.004)
    ddp = DDP(copy.deepcopy(eager.module), bucket_cap_mb=0.004)
    compiled = kiln.compile(ddp)
    xs = [torch.randn(8, 16, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    for model, target in ((eager, eager), (compiled, ddp)):
        with target.no_sync():
            _train_step(model, xs[0])
            _train_step(model, xs[1])
        _train_step(model, xs[2])
    for p, q in zip(ddp.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
