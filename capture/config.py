"""Capture settings. Change them as module attributes: `capture.config.recompile_limit = 4`."""
from __future__ import annotations

import os

# Cache entries per function before it is left to run eagerly.
recompile_limit: int = 8

# True/False forces strict mode; None reads KILN_STRICT on each use (so tests can monkeypatch it).
# In strict mode internal errors raise instead of falling back to eager.
strict: bool | None = None


def is_strict() -> bool:
    if strict is not None:
        return strict
    return os.environ.get("KILN_STRICT", "").strip() not in ("", "0", "false", "False")
