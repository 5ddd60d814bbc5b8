"""The partition of joint graphs into forward and backward (prims/partition.py, prims/mincut.py):
both graphs run through the prims' references give eager's outputs and gradients; the min-cut saves
no more bytes than save_all or eager; it never recomputes random, extern, fallback or reduction work."""
from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from kiln import config
from kiln.prims import Category, Prim, partition
from kiln.prims.builder import META_KEY
from kiln.prims.partition_text import human_bytes
from kiln.training_stats import eager_saved_bytes

from .joint_graphs import run_partition, trace_joint

mincut_module = sys.modules["kiln.prims.mincut"]


def module_fn(m: nn.Module):
    """`m` as a function of (*parameters, *buffers, *inputs), and those parameters and buffers."""
    names = [n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers()]
    tensors = list(m.parameters()) + list(m.buffers())

    def fn(*args):
        out = torch.func.functional_call(m, dict(zip(names, args[:len(names)])), tuple(args[len(names):]))
        return out if isinstance(out, tuple) else (out,)

    return fn, [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]


def mlp():
    torch.manual_seed(0)
    fn, ts = module_fn(nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 16)))
    return fn, ts + [torch.randn(8, 16, requires_grad=True)]


def conv_bn_relu():
    torch.manual_seed(0)
    fn, ts = module_fn(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).train())
    return fn, ts + [torch.randn(2, 3, 8, 8, requires_grad=True)]


def attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 8, requires_grad=True) for _ in range(3))
    return (lambda q, k, v: (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v,)), [q, k, v]


def gelu_matmul():
    """Recomputing gelu(x @ w1) from x @ w1 beats saving both."""
    torch.manual_seed(0)
    x, w1 = torch.randn(4, 8, requires_grad=True), torch.randn(8, 16, requires_grad=True)
    w2 = torch.randn(16, 8, requires_grad=True)
    return (lambda x, w1, w2: (F.gelu(x @ w1) @ w2,)), [x, w1, w2]


def nothing_saved():
    x = torch.randn(8, 16, requires_grad=True)
    return (lambda x: ((x * 3 + 1).sum(), x - 2)), [x]


def special_values():
    """Recomputed pointwise work sees inf, -inf, nan, -0.0, denormals and extremes as the forward did."""
    x = torch.tensor([math.inf, -math.inf, math.nan, -0.0, 0.0, 1e-40, -1e-40, 3.4e38, -3.4e38, 1.5, -2.0],
                     requires_grad=True)
    y = torch.linspace(-3, 3, 11, requires_grad=True)
    return (lambda x, y: (torch.tanh(x * y) * torch.exp(-y * y) + torch.sigmoid(x),)), [x, y]


def zero_size_and_0_dim():
    x, s = torch.randn(0, 5, requires_grad=True), torch.tensor(0.7, requires_grad=True)
    return (lambda x, s: (torch.sin(x * s) * s, torch.exp(s) * torch.cos(s))), [x, s]


def gradient_is_a_tangent():
    x, y = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    return (lambda x, y: (x.clone(), y * 2, (x + y).sum())), [x, y]


def where_mask():
    """The backward of where reads only its condition: a bool is all the min-cut saves."""
    x, y = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    return (lambda x, y: (torch.where(x > 0, x, y) * 3,)), [x, y]


CASES = {"mlp_layernorm_gelu": mlp, "conv_batchnorm_relu": conv_bn_relu, "attention_softmax": attention,
         "gelu_matmul": gelu_matmul, "nothing_saved": nothing_saved, "special_values": special_values,
         "zero_size_and_0_dim": zero_size_and_0_dim, "gradient_is_a_tangent": gradient_is_a_tangent,
         "where_mask": where_mask}


def tangents_for(outs):
    torch.manual_seed(1)
    return [torch.randn_like(o) for o in outs]


def check_against_eager(fn, primals, part, joint):
    leaves = [p.detach().clone().requires_grad_(p.requires_grad) for p in primals]
    outs = list(fn(*leaves))
    tangents = tangents_for(outs)
    want_grads = torch.autograd.grad(outs, [x for x in leaves if x.requires_grad], tangents)
    got_outs, got_grads = run_partition(part, [p.detach() for p in primals], tangents)
    for got, want in zip(got_outs[:joint.num_outputs], outs):
        torch.testing.assert_close(got, want.detach(), equal_nan=True)
    for got, want in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got, want, equal_nan=True)
    return got_outs


@pytest.mark.parametrize("strategy", ["mincut", "save_all"])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_eager(case, strategy):
    fn, primals = CASES[case]()
    joint = trace_joint(fn, primals)
    part = partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs, strategy=strategy)
    assert part.strategy == strategy
    check_against_eager(fn, primals, part, joint)


def test_batchnorm_running_stats_are_forward_outputs():
    """BatchNorm in train mode: the new running stats come out of the forward graph, as eager's."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).train()
    fn, ts = module_fn(m)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    joint = trace_joint(fn, ts + [x])
    part = partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs)
    outs, _ = run_partition(part, [t.detach() for t in ts] + [x.detach()], [torch.randn(2, 8, 6, 6)])
    m(x)
    new_stats = outs[joint.num_outputs:]  # num_batches_tracked, running_mean, running_var (mutation order)
    torch.testing.assert_close(new_stats[0], m[1].num_batches_tracked, rtol=0, atol=0)
    torch.testing.assert_close(new_stats[1], m[1].running_mean)
    torch.testing.assert_close(new_stats[2], m[1].running_var)


def _both(case):
    fn, primals = CASES[case]()
    joint = trace_joint(fn, primals)
    parts = {s: partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs, strategy=s)
             for s in ("mincut", "save_all")}
    return fn, primals, joint, parts


@pytest.mark.parametrize("case", CASES)
def test_mincut_saves_no_more_than_save_all_or_eager(case):
    fn, primals, _, parts = _both(case)
    cut, everything = parts["mincut"], parts["save_all"]
    assert cut.save_all_bytes == everything.saved_bytes
    assert cut.saved_bytes <= everything.saved_bytes
    assert cut.saved_bytes <= eager_saved_bytes(fn, *primals)


def _joint_node(part, name) -> fx.Node:
    return next(n for n in part.joint.graph.nodes if n.name == name)


@pytest.mark.parametrize("case", CASES)
def test_never_recomputes_random_extern_fallback_or_reductions(case):
    _, _, _, parts = _both(case)
    assert_recomputes_only_cheap_work(parts["mincut"])


def assert_recomputes_only_cheap_work(part):
    for name in part.recomputed:
        node = _joint_node(part, name)
        assert node.op == "call_function"
        if isinstance(node.target, Prim):
            assert node.target.category not in (Category.RANDOM, Category.EXTERN, Category.FALLBACK), name
            assert not node.target.extra.get("impure"), name
            if node.target.category is Category.REDUCTION:  # only reductions that barely reduce
                out, inp = node.meta[META_KEY], node.args[0].meta[META_KEY]
                assert out.numel() * 4 >= inp.numel(), name


def test_recompute_beats_saving():
    """gelu(x @ w1) @ w2: the min-cut saves x @ w1 and recomputes the GELU in the backward, where
    save_all (and eager) keep both the matmul's output and the GELU's."""
    fn, primals, joint, parts = _both("gelu_matmul")
    cut, everything = parts["mincut"], parts["save_all"]
    matmuls = [n for n in joint.gm.graph.nodes if getattr(n.target, "name", None) == "matmul"]
    first, second = matmuls[0], matmuls[1]
    gelu_out = second.args[0]
    assert first.name in cut.saved and gelu_out.name not in cut.saved
    assert gelu_out.name in cut.recomputed and any("erf" in r for r in cut.recomputed)
    assert gelu_out.name in [a.name for n in everything.joint.graph.nodes for a in n.all_input_nodes]
    assert cut.saved_bytes < everything.saved_bytes and cut.saved_bytes < eager_saved_bytes(fn, *primals)
    assert not any(_joint_node(cut, n).target is _joint_node(cut, first.name).target for n in cut.recomputed)


def test_nothing_saved():
    _, _, joint, parts = _both("nothing_saved")
    for part in parts.values():
        assert part.saved == () and part.saved_bytes == 0
        assert [n.name for n in part.backward.graph.nodes if n.op == "placeholder"] == ["tangents_0", "tangents_1"]


def test_where_saves_only_its_condition():
    _, _, _, parts = _both("where_mask")
    part = parts["mincut"]
    assert [_joint_node(part, n).meta[META_KEY].dtype for n in part.saved] == [torch.bool]
    assert part.saved_bytes == 20 < parts["save_all"].saved_bytes


def test_dropout_mask_saved_never_redrawn():
    """A random op runs once, in the forward: the backward reads the saved mask (a bool, the cheapest
    value on the way), so y = dropout(x) * 2 and its gradient agree element by element."""
    x = torch.randn(64, 32, requires_grad=True)
    fn = lambda x: (F.dropout(x, 0.3, True) * 2,)  # noqa: E731
    joint = trace_joint(fn, [x])
    part = partition(joint.gm, num_primals=1, grad_outputs=joint.grad_outputs)
    for node in part.backward.graph.nodes:
        assert not (isinstance(node.target, Prim) and node.target.category is Category.RANDOM), node.name
    saved = [_joint_node(part, name).meta[META_KEY] for name in part.saved]
    assert [m.dtype for m in saved] == [torch.bool]
    assert part.saved_bytes == x.numel() < eager_saved_bytes(fn, x)
    torch.manual_seed(3)
    (y,), (grad,) = run_partition(part, [x.detach()], [torch.ones(64, 32)])
    torch.testing.assert_close(grad * x.detach(), y)
    kept = (y != 0).float().mean().item()
    assert 0.6 < kept < 0.8
    torch.manual_seed(3)
    joint_y, joint_grad = joint.gm(x.detach(), torch.ones(64, 32))  # the unsplit joint graph: same stream
    torch.testing.assert_close(joint_y, y, rtol=0, atol=0)
    torch.testing.assert_close(joint_grad, grad, rtol=0, atol=0)


def _chain(n_adds):
    def fn(x):
        for _ in range(n_adds):
            x = x + 1.0
        return (torch.sin(x),)
    return fn


def test_recompute_is_bounded():
    """sin(x + 1 + 1 + ...): the backward needs the sum. A short chain is recomputed from the input
    (saving the input costs the same bytes and writes nothing); a long one is not replayed whole."""
    x = torch.randn(16, requires_grad=True)
    short = trace_joint(_chain(4), [x])
    part = partition(short.gm, num_primals=1, grad_outputs=short.grad_outputs)
    assert part.saved == ("primals_0",) and len(part.recomputed) == 4
    long = trace_joint(_chain(3 * mincut_module.MAX_RECOMPUTE_DISTANCE), [x])
    part = partition(long.gm, num_primals=1, grad_outputs=long.grad_outputs)
    assert part.saved != ("primals_0",) and len(part.recomputed) <= mincut_module.MAX_RECOMPUTE_DISTANCE
    assert part.saved_bytes == x.numel() * 4
    check_against_eager(_chain(3 * mincut_module.MAX_RECOMPUTE_DISTANCE), [x], part, long)


def test_strategy_from_config(monkeypatch):
    fn, primals = mlp()
    joint = trace_joint(fn, primals)
    monkeypatch.setattr(config, "partition", "save_all")
    part = partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs)
    assert part.strategy == "save_all" and part.recomputed == () and part.saved_bytes == part.save_all_bytes
    with pytest.raises(ValueError, match="strategy"):
        partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs, strategy="greedy")


def test_no_finite_cut_falls_back_to_save_all(monkeypatch):
    """When no finite cut exists (here: no value may be saved), the partition saves what save_all does."""
    fn, primals = gelu_matmul()
    joint = trace_joint(fn, primals)
    monkeypatch.setattr(mincut_module, "nbytes", lambda n: None)
    part = partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs, strategy="mincut")
    assert part.strategy == "save_all" and part.recomputed == ()
    check_against_eager(fn, primals, part, joint)


def test_text_and_dump():
    fn, primals, _, parts = _both("gelu_matmul")
    part = parts["mincut"]
    eager = eager_saved_bytes(fn, *primals)
    text = part.text(eager)
    for name in (*part.saved, *part.recomputed):
        assert name in text
    assert f"{human_bytes(part.saved_bytes)}; save_all: {human_bytes(part.save_all_bytes)}" in text
    assert f"eager's saved tensors: {human_bytes(eager)}" in text
    assert "float32[4, 16]" in text and "extern" in text  # the saved matmul, and why it is not recomputed
    dump = part.dump(eager)
    heads = ["# joint graph", "# partition", "# forward graph", "# backward graph"]
    assert [dump.index(h) for h in heads] == sorted(dump.index(h) for h in heads)


def test_eager_saved_bytes_counts_each_storage_once():
    x, w = torch.randn(4, 8, requires_grad=True), torch.randn(8, 3, requires_grad=True)
    assert eager_saved_bytes(lambda: x @ w) == (32 + 24) * 4
    assert eager_saved_bytes(lambda: x * x) == 32 * 4  # saved twice, one storage
    assert eager_saved_bytes(lambda: x[:3, :2] * w.t()[:, :2]) == (32 + 24) * 4  # views keep whole storages
    assert eager_saved_bytes(lambda: (x + 1).sum()) == 0
    with torch.no_grad():
        assert eager_saved_bytes(lambda: torch.sin(x)) == 32 * 4  # grad mode is on while it measures


def gpt2(n_layer):
    transformers = pytest.importorskip("transformers")
    config_ = transformers.GPT2Config(n_layer=n_layer, n_embd=32, n_head=2, vocab_size=64, n_positions=16,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager",
                                      bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config_).train()
    names = [n for n, _ in model.named_parameters()]
    ids = torch.randint(0, 64, (2, 8))

    def fn(*params):
        return (torch.func.functional_call(model, dict(zip(names, params)), (ids,), {"labels": ids}).loss,)

    return fn, [p.detach().clone().requires_grad_() for p in model.parameters()]


@pytest.mark.parametrize("n_layer", [1, pytest.param(12, marks=pytest.mark.slow)])
def test_gpt2(n_layer):
    fn, params = gpt2(n_layer)
    joint = trace_joint(fn, params)
    part = partition(joint.gm, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs, strategy="mincut")
    assert part.strategy == "mincut"
    assert part.saved_bytes < part.save_all_bytes and part.saved_bytes < eager_saved_bytes(fn, *params)
    assert part.recomputed
    assert_recomputes_only_cheap_work(part)
    check_against_eager(fn, params, part, joint)
