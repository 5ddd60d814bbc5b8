"""Every model type in transformers' auto mappings, with the class the sweep builds for it.

A type's class is its base model (`MODEL_MAPPING_NAMES`, e.g. `LlamaModel`) when it has one,
else the first class another auto mapping lists for it, mappings taken in name order
(`MODEL_FOR_CAUSAL_LM_MAPPING_NAMES` → `TrOCRForCausalLM`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelType:
    name: str        # the model type, as in CONFIG_MAPPING_NAMES ("llama")
    cls: str         # the class built ("LlamaModel")
    mapping: str     # the auto mapping the class came from


def model_types() -> list[ModelType]:
    from transformers.models.auto import modeling_auto as auto

    found = {}
    for name, cls in auto.MODEL_MAPPING_NAMES.items():
        found[name] = ModelType(name, _first(cls), "MODEL_MAPPING_NAMES")
    for mapping in sorted(dir(auto)):
        if not mapping.endswith("_MAPPING_NAMES") or mapping in ("CONFIG_MAPPING_NAMES", "MODEL_MAPPING_NAMES"):
            continue
        for name, cls in getattr(auto, mapping).items():
            found.setdefault(name, ModelType(name, _first(cls), mapping))
    return sorted(found.values(), key=lambda t: t.name)


def _first(cls) -> str:
    return cls[0] if isinstance(cls, (tuple, list)) else cls


def by_name() -> dict[str, ModelType]:
    return {t.name: t for t in model_types()}
