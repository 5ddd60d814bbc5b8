"""Logging for the back half: loggers `kiln.<artifact>`, switched on by KILN_LOGS=a,b,c."""
import logging
import os
import sys


def artifact_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"kiln.{name}")
    wanted = {a.strip() for a in os.environ.get("KILN_LOGS", "").split(",")}
    if (name in wanted or "all" in wanted) and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"[kiln.{name}] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    return logger
