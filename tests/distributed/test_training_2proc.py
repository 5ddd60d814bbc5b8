"""DDP and FSDP2 training on 2 processes (gloo, loopback), both entry points: 5 AdamW steps of a
compiled model equal to eager's under the same wrapper, on every rank (tests/kiln_distributed.py).

DDP: torch.compile(ddp_model, backend="kiln") (TorchDynamo's DDPOptimizer splits the graph) and
kiln.compile(ddp_model) (Kiln splits it: capture/distributed.py); the small bucket cap makes the MLP's
graph split into several pieces. FSDP2: each block sharded with fully_shard and compiled on its own.
"""
import pytest

from kiln_distributed import spawn, train

ENTRIES = ("torch.compile", "kiln.compile")


def _cases(names):
    return [pytest.param(wrapper, name, entry, id=f"{wrapper}-{name}-{entry}")
            for wrapper in ("ddp", "fsdp") for name in names for entry in ENTRIES]


@pytest.mark.parametrize("wrapper,name,entry", _cases(["mlp", "gpt2"]))
def test_training_matches_eager_on_every_rank(wrapper, name, entry):
    ddp_kwargs = {"bucket_cap_mb": 0.004} if wrapper == "ddp" and entry == "kiln.compile" else None
    spawn(train, wrapper, name, entry, ddp_kwargs)
