"""Whole models with their loss inside, for training tests (tests/e2e/test_model_training.py,
tests/e2e/test_autocast.py): each builder returns (module, inputs, target); `module(*inputs, target)`
is the scalar loss. Built from tests/kiln_models.py with fixed seeds (transformers' dropouts are 0)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln_models as models
from kiln.backend import KilnCompileWarning
from kiln.capture.exc import FallbackWarning

STEPS = 5
# AdamW's step is lr * m / (sqrt(v) + eps): with torch's eps=1e-8 a gradient near 0 can turn a rounding
# difference into an update of up to lr either way. eps=1e-4 keeps the test on the compiler's numbers,
# not on that amplification. (Calibrated: torch.compile's inductor passes these comparisons.)
ADAMW = {"lr": 1e-2, "eps": 1e-4, "weight_decay": 0.01}

DRIFT = 2e-4


def batch(step, inputs, target, seed=100):
    """Step `step`'s batch: the builder's shapes, new floats; ids and classes shuffled (they stay valid)."""
    g = torch.Generator().manual_seed(seed + step)

    def like(x):
        if x.is_floating_point():
            return torch.randn(x.shape, generator=g)
        return x.flatten()[torch.randperm(x.numel(), generator=g)].view_as(x)

    return tuple(like(x) for x in inputs), like(target)


def compare_tensors(got: dict, expected: dict, what: str, step: int):
    """assert_close's defaults on step 0 (same weights, same batch). Later steps start from weights that
    already differ by rounding, and two float32 runs drift apart: an absolute tolerance of DRIFT times
    the tensor's largest magnitude (torch.compile's inductor drifts 5.4e-5 of it by step 4 on LLaMA)."""
    assert got.keys() == expected.keys()
    for key, e in expected.items():
        g = got[key]
        assert (g is None) == (e is None), f"step {step} {what} {key}: {g is None=} {e is None=}"
        if e is None:
            continue
        tol = {}
        if step and e.is_floating_point() and e.numel():
            tol = {"rtol": 1.3e-6, "atol": max(1e-5, DRIFT * e.abs().max().item())}
        torch.testing.assert_close(g, e, **tol, msg=lambda m: f"step {step} {what} {key}: {m}")


def layer_norm_mlp():
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.LayerNorm(12), torch.nn.GELU(), torch.nn.Linear(12, 3))


def check_batches(compiled, model, reference, batches):
    """For each batch size: the compiled model's loss and every gradient equal the reference's."""
    for b in batches:
        x = torch.randn(b, 6)
        got = compiled(x).square().mean()
        got.backward()
        expected = reference(x).square().mean()
        expected.backward()
        torch.testing.assert_close(got, expected)
        for p, q in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(p.grad, q.grad)
            p.grad = q.grad = None


def kiln_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, (FallbackWarning, KilnCompileWarning))]


class WithLoss(nn.Module):
    """model(*inputs) -> a scalar loss against `target`, computed inside the compiled forward."""

    def __init__(self, model, loss, **call_kwargs):
        super().__init__()
        self.model, self.loss, self.call_kwargs = model, loss, call_kwargs

    def forward(self, *args):
        *inputs, target = args
        out = self.model(*inputs, **self.call_kwargs)
        return self.loss(out if isinstance(out, torch.Tensor) else out.last_hidden_state, target)


def _mse(out, target):
    return F.mse_loss(out, target)


def _classes(out, target):
    return F.cross_entropy(out, target)


def _nll(out, target):
    return F.nll_loss(out, target)


def _mlp():
    model, (x,) = models.mlp()
    return WithLoss(model, _nll), (x,), torch.randint(0, 10, (x.shape[0],))


def _resnet():
    model, (x,) = models.resnet(size=8)
    return WithLoss(model, _classes), (x,), torch.randint(0, 10, (x.shape[0],))


def _hf(build):
    def built():
        model, (ids,) = build()
        kwargs = {} if build is models.bert else {"use_cache": False}
        target = torch.randn(*ids.shape, model.config.hidden_size)
        return WithLoss(model, _mse, **kwargs), (ids,), target
    built.__name__ = build.__name__
    return built


BUILDERS = {"mlp": _mlp, "resnet": _resnet, "gpt2": _hf(models.gpt2), "bert": _hf(models.bert),
            "llama": _hf(models.llama)}
