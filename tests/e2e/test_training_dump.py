"""`kiln dump` of a training graph: 2_partition.txt lists the saved values with their sizes, the
recomputed nodes, and the saved bytes against save_all and eager's saved tensors (measured on
fakes: the dump never runs the model nor writes its running stats)."""
import pytest
import torch
import torch.nn as nn

from kiln import config
from kiln.prims.partition_text import human_bytes
from kiln.training_stats import eager_saved_bytes
from kiln_entries import ENTRY_POINTS


pytestmark = pytest.mark.usefixtures("strict")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_partition_dump(entry, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "dump_dir", str(tmp_path))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.GELU(), nn.Linear(16, 4)).train()
    x = torch.randn(6, 8)
    eager = eager_saved_bytes(lambda: model(x))  # writes the running stats once
    ENTRY_POINTS[entry](model)(x).sum().backward()
    assert int(model[1].num_batches_tracked) == 2  # the compiled call's write, not the dump's
    (text,) = [p.read_text() for p in tmp_path.rglob("2_partition.txt")]
    assert text.startswith("# partition (mincut")
    assert f"eager's saved tensors: {human_bytes(eager)}" in text
    assert "# saved:" in text and "# recomputed in the backward:" in text
    assert "float32[6, 16]" in text  # a saved activation, with its size
    assert "erf" in text  # GELU's pointwise work is recomputed, not saved
