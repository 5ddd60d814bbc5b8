"""Kiln's settings, the one place that reads Kiln's environment variables.

Each setting is read from its variable once, when Kiln is imported; change it afterwards as an
attribute (`kiln.config.strict = True`, `kiln.config.recompile_limit = 4`). `describe()` lists
them with their variables. This module imports only the standard library, so every stage may
import it.
"""
from __future__ import annotations

import os
from pathlib import Path

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

# setting: (environment variable, what it does); the values are below.
VARIABLES = {
    "strict": ("KILN_STRICT", "raise instead of running a graph eagerly (1/true/yes/on; 0/false/no/off or unset: "
                              "fall back); `ops`: also raise on an op run as is inside a compiled graph"),
    "logs": ("KILN_LOGS", "comma-separated log artifacts, or `all` (kiln.logs.ARTIFACTS lists them)"),
    "cache_dir": ("KILN_CACHE_DIR", "where built kernels and Triton autotuning choices are cached"),
    "dump_dir": ("KILN_DUMP_DIR", "write every stage of every compiled graph under this folder (`kiln dump` sets it)"),
    "target": ("KILN_TARGET", "`cpp` or `triton`: force a code generator (default: by the inputs' device)"),
    "cxx": ("KILN_CXX", "the C++ compiler for kernels"),
    "profile": ("KILN_PROFILE", "time every kernel and library call of graphs compiled from now on; the "
                                "report (`kiln.profile_report()`) is printed at exit (`kiln profile SCRIPT.py`)"),
    "strict_dynamic": ("KILN_STRICT_DYNAMIC", "raise where a graph of symbolic sizes cannot be compiled once for every "
                                              "size (default: it compiles per concrete size)"),
    "partition": ("KILN_PARTITION", "how training graphs choose what the forward saves for the backward: `mincut` "
                                    "(default: fewest saved bytes, cheap work recomputed) or `save_all`"),
}


def _flag(variable: str) -> bool:
    value = os.environ.get(variable, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{variable}={os.environ[variable]!r}: expected one of {', '.join(_TRUE)} (on) "
                     f"or {', '.join(v for v in _FALSE if v)} (off)")


def _strict(variable: str) -> bool | str:
    """True/False as a flag, or "ops" (also op-level fallbacks raise)."""
    if os.environ.get(variable, "").strip().lower() == "ops":
        return "ops"
    try:
        return _flag(variable)
    except ValueError as e:
        raise ValueError(f"{e}, or ops (also raise on op-level fallbacks)") from None


def _names(variable: str) -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get(variable, "").split(",") if n.strip())


def _target(variable: str) -> str | None:
    value = os.environ.get(variable, "").strip() or None
    if value not in (None, "cpp", "triton"):
        raise ValueError(f"{variable}={value!r}: expected 'cpp' or 'triton'")
    return value


def _partition(variable: str) -> str:
    value = os.environ.get(variable, "").strip().lower() or "mincut"
    if value not in ("mincut", "save_all"):
        raise ValueError(f"{variable}={value!r}: expected 'mincut' or 'save_all'")
    return value


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


strict: bool | str = _strict("KILN_STRICT")  # "ops" is truthy: whole-graph fallbacks raise too
logs: frozenset[str] = _names("KILN_LOGS")
cache_dir: Path = _path("KILN_CACHE_DIR") or Path.home() / ".cache" / "kiln"
dump_dir: Path | None = _path("KILN_DUMP_DIR")
target: str | None = _target("KILN_TARGET")
cxx: str = os.environ.get("KILN_CXX", "").strip() or "g++"
partition: str = _partition("KILN_PARTITION")
profile: bool = _flag("KILN_PROFILE")
strict_dynamic: bool = _flag("KILN_STRICT_DYNAMIC")

# Settings with no environment variable.
recompile_limit: int = 8  # cache entries per function before it is left to run eagerly


def describe() -> str:
    """Every setting, its current value and its variable."""
    here = globals()
    lines = [f"{name} = {here[name]!r}  ({var}: {what})" for name, (var, what) in VARIABLES.items()]
    return "\n".join(lines + [f"recompile_limit = {recompile_limit!r}"])
