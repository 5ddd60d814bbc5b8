"""Whole models with their loss inside, for training tests (tests/e2e/test_model_training.py,
tests/e2e/test_autocast.py): each builder returns (module, inputs, target); `module(*inputs, target)`
is the scalar loss. Built from tests/kiln_models.py with fixed seeds (transformers' dropouts are 0)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln_models as models


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
