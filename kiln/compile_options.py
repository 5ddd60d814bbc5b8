"""The keywords `torch.compile(model, backend="kiln", mode=..., options={...})` passes the back end.

torch.compile hands a custom backend `mode` and `options` as keyword arguments. Kiln honours the
options it has and accepts the rest with one warning each (by name, once per process): Inductor's
knobs (`max_autotune`, `triton.cudagraphs`, `epilogue_fusion`, ...) have no meaning here, and
failing the user's whole compile over one would be worse than ignoring it.
"""
from __future__ import annotations

from .fallback import warn

# torch.compile's modes: Kiln has no autotuning and no CUDA graphs, so each compiles as "default"
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# options Kiln honours -> what each may be
HONOURED = {"target": ("cpp", "triton")}

_warned: set[str] = set()


def resolve(target, mode, options) -> str | None:
    """The target the options ask for (or `target` as given), after checking `mode` and `options`."""
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"torch.compile(backend='kiln', mode={mode!r}): expected one of {', '.join(MODES)}")
        if mode != "default":
            _warn_once(f"mode={mode}", f"mode={mode!r} is accepted and compiled as 'default' (Kiln has no "
                                       "autotuning and no CUDA graphs)")
    for name, value in dict(options or {}).items():
        allowed = HONOURED.get(name)
        if allowed is None:
            _warn_once(name, f"option {name!r} is not one Kiln has; ignored (Kiln's options: "
                             f"{', '.join(sorted(HONOURED))})")
        elif value not in allowed:
            raise ValueError(f"option {name}={value!r}: expected one of {', '.join(map(repr, allowed))}")
        elif name == "target":
            target = value
    return target


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warn(message)
