"""torch.distributed collectives inside compiled functions, 2 processes (gloo, loopback): traced as
functional collectives (capture/variables/collectives.py) or, for the rest, a clean graph break;
results equal eager's on every rank, on both entry points (tests/kiln_distributed.py)."""
import pytest

from kiln_distributed import collectives, spawn


@pytest.mark.parametrize("entry", ["kiln.compile", "torch.compile"])
def test_collectives_match_eager_on_every_rank(entry):
    spawn(collectives, entry)
