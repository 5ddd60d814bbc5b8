"""CI's sample of the model-type sweep (tests/models, `python -m tests.models`): a few diverse model
types from transformers' auto mappings, built small from their configs, through
`torch.compile(model, backend="kiln")` in a worker process, compared with eager. Every graph
TorchDynamo hands Kiln must compile (no whole-graph fallback, none at call time), with exactly the
op-level fallbacks listed, and the answers must be eager's. The whole sweep and its figures:
README "Sweeps", bench/RESULTS.md."""
import pytest
import torch

from models.compare import mismatch
from models.sweep import FAILURES, run

pytest.importorskip("transformers")

# model type -> the ATen ops expected to run as op-level fallbacks inside its compiled graph
SAMPLE = {
    "gpt2": (),          # decoder, learned positions
    "bert": (),          # encoder, padding mask
    "llama": (),         # rotary embeddings, RMSNorm, grouped-query attention
    "t5": (),            # encoder-decoder, relative position buckets
    "vit": (),           # vision: patches by conv
    "mixtral": ("transformers.grouped_mm_fallback.default",),  # mixture of experts: transformers' own custom op
}


@pytest.fixture(scope="module")
def results():
    return {r["id"]: r for r in run(list(SAMPLE), jobs=1, timeout=240)}


@pytest.mark.parametrize("name", SAMPLE)
def test_model_type_compiles_whole_and_matches_eager(results, name):
    r = results[name]
    assert r["class"] not in FAILURES + ("SKIP", "DYNAMO", "NO_GRAPH"), r
    assert r["graphs"] >= 1 and r["compiled"] == r["graphs"], r
    assert not r["refusals"] and not r["call_fallbacks"], r
    assert not r["wrong"], r
    assert tuple(sorted({op for op, _ in r["fallbacks"]})) == SAMPLE[name], r["fallbacks"]
    assert r["class"] == ("FALLBACK" if SAMPLE[name] else "OK"), r


def test_comparison_finds_a_wrong_value_and_is_exact_for_integers():
    out = {"logits": torch.tensor([1.0, 2.0]), "ids": torch.tensor([1, 2])}
    assert mismatch(out, {"logits": torch.tensor([1.0, 2.0]), "ids": torch.tensor([1, 2])}) is None
    assert "logits" in mismatch({**out, "logits": torch.tensor([1.0, 2.1])}, out)
    assert "ids" in mismatch({**out, "ids": torch.tensor([1, 3])}, out)
    assert "logits" in mismatch({**out, "logits": torch.tensor([1.0, float("nan")])}, out)
    assert "shape" in mismatch({**out, "ids": torch.tensor([1])}, out) or "ids" in mismatch({**out, "ids": torch.tensor([1])}, out)
    # a float64 run forgives rounding (closer to it than eager), never a wrong value
    ref = {"logits": torch.tensor([1.0, 2.0], dtype=torch.float64), "ids": torch.tensor([1, 2])}
    assert mismatch({**out, "logits": torch.tensor([1.0, 2.0 + 1e-4])}, {**out, "logits": torch.tensor([1.0, 2.0 - 1e-4])},
                    reference=ref) is None
    assert mismatch({**out, "logits": torch.tensor([1.0, 2.1])}, out, reference=ref) is not None
