"""Build one model type small, offline, and find inputs it runs on eagerly.

`build(model_type)` tries the config tiers of shrink.py ("small", then "shallow") and, per tier,
the input candidates of inputs.py; the first (tier, inputs) that runs eagerly under no_grad in eval
mode wins. When none does, `Unbuildable` carries the first error met (its stage: "config",
"model" or "eager"), which is what the sweep records as the skip reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .inputs import candidates, describe
from .shrink import TIERS, shrink_dict
from .zoo import ModelType

SEED = 0


class Unbuildable(Exception):
    def __init__(self, stage: str, error: BaseException):
        self.stage = stage
        text = str(error).strip().splitlines()
        super().__init__(f"{stage}: {type(error).__name__}: {text[0][:300] if text else ''}")


@dataclass
class Built:
    model: torch.nn.Module
    inputs: dict
    tier: str
    params: int

    def describe(self) -> dict:
        return describe(self.inputs)


def make_config(model_type: ModelType, tier: str):
    from transformers import CONFIG_MAPPING

    config_cls = CONFIG_MAPPING[model_type.name]
    config = config_cls.from_dict(shrink_dict(config_cls().to_dict(), tier))
    for cfg in [config] + [getattr(config, k) for k in vars(config) if hasattr(getattr(config, k), "to_dict")]:
        if hasattr(cfg, "use_cache"):
            cfg.use_cache = False  # no KV caches in the outputs: plain tensors to compare
    return config


def make_model(model_type: ModelType, config) -> torch.nn.Module:
    import transformers

    cls = getattr(transformers, model_type.cls)
    torch.manual_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(config)
    return model.float().eval()


def run_eager(model, inputs: dict, seed: int = SEED):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(**inputs)


def build(model_type: ModelType) -> Built:
    first = None
    for tier in TIERS:
        try:
            config = make_config(model_type, tier)
        except Exception as e:  # noqa: BLE001 - recorded as the skip reason
            first = first or Unbuildable("config", e)
            continue
        try:
            model = make_model(model_type, config)
        except Exception as e:  # noqa: BLE001
            first = first or Unbuildable("model", e)
            continue
        try:
            tries = candidates(model)
        except Exception as e:  # noqa: BLE001
            first = first or Unbuildable("inputs", e)
            continue
        for inputs in tries:
            try:
                run_eager(model, inputs)
            except Exception as e:  # noqa: BLE001
                first = first or Unbuildable("eager", e)
                continue
            return Built(model, inputs, tier, sum(p.numel() for p in model.parameters()))
        if not tries:
            first = first or Unbuildable("inputs", ValueError(f"no inputs known for {model.main_input_name!r}"))
    raise first
