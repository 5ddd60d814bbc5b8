"""Suite-wide setup. Triton decides interpreter mode at import, and torch may import it early, so
ask for the interpreter before anything else runs when there is no CUDA device."""
import os
import tempfile

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Keep the suite's C++/Triton build cache out of the user's home (shared across the session).
os.environ.setdefault("KILN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kiln-test-cache"))


def pytest_collection_modifyitems(config, items):
    """Sweeps marked `slow` run only with KILN_FULL=1 (the nightly-style command) or `-m slow`."""
    import pytest

    if os.environ.get("KILN_FULL") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow sweep: run with KILN_FULL=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
