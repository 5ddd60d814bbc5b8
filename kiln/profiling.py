"""`kiln.profile_report()` and, under KILN_PROFILE=1, the report printed at exit (the timing itself
is the profiled wrapper's: kiln/codegen/profile.py)."""
from __future__ import annotations

import atexit
import sys

from . import config


def profile_report(limit: int = 30) -> str:
    """Where compiled graphs spent their time, step by step (graphs compiled with `kiln.config.profile`
    on, i.e. `KILN_PROFILE=1`; see kiln/codegen/profile.py). With KILN_PROFILE=1 it is also printed
    to stderr at exit."""
    from .codegen import profile

    return profile.report(limit)


def _print_profile_at_exit() -> None:
    print(profile_report(), file=sys.stderr)


if config.profile:
    atexit.register(_print_profile_at_exit)
