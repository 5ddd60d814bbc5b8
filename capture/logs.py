"""Loggers `kiln.<artifact>`, switched on by KILN_LOGS=graph,guards,recompiles,graph_breaks,bytecode."""
from __future__ import annotations

import logging
import os
import sys

ARTIFACTS = ("graph", "guards", "recompiles", "graph_breaks", "bytecode")
_enabled: set[str] = set()


def get_logger(artifact: str) -> logging.Logger:
    return logging.getLogger(f"kiln.{artifact}")


def enable(*artifacts: str) -> None:
    """Send the named artifacts to stderr at DEBUG level (each handler is added once)."""
    for artifact in artifacts:
        if artifact in _enabled:
            continue
        logger = get_logger(artifact)
        logger.setLevel(logging.DEBUG)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"[kiln.{artifact}] %(message)s"))
        logger.addHandler(handler)
        _enabled.add(artifact)


def enable_from_env() -> None:
    enable(*(name.strip() for name in os.environ.get("KILN_LOGS", "").split(",") if name.strip()))
