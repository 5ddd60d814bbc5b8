"""Kernel launchers: pick a launch config once per (kernel source, sizes), remember it on disk.

Under Triton's interpreter (and whenever autotuning is off) the first candidate, the
heuristic's pick, is used. On a GPU the first launch for some sizes times every candidate with
`benchmark` (triton.testing.do_bench by default; tests inject a fake one), keeps the fastest,
and writes it to KILN_CACHE_DIR/triton/autotune/<key>.json, so later processes skip the timing.
Re-running a candidate is safe: a Kiln kernel never reads what it writes at another index, and
no kernel writes a buffer it was given as an input (memory.py frees a buffer only after its
last reader), so every timed launch computes the same outputs.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from .. import cache_files
from .configs import LaunchConfig


def cache_dir() -> Path:
    return cache_files.cache_dir("triton")


def _gpu_benchmark(launch: Callable[[], None]) -> float:
    from triton.testing import do_bench

    return do_bench(launch, warmup=10, rep=40)


class AutotuneStats:
    """Counters for tests: how many configs were timed, how many choices came from disk."""
    timed = 0
    cache_hits = 0


class KernelLauncher:
    """Called by the wrapper as `kernel0(bufs..., xnumel=..., rnumel=...)`."""

    def __init__(self, fn, source: str, configs: list[LaunchConfig], *, autotune: bool, device: str = "",
                 benchmark: Callable[[Callable[[], None]], float] | None = None, lock=None):
        """`lock`: held around each launch (Triton's interpreter patches triton.language while a kernel
        runs, so two threads interpreting kernels at once break each other)."""
        self.fn, self.configs, self.autotune, self.device = fn, configs, autotune and len(configs) > 1, device
        self.lock = lock
        self.benchmark = benchmark or _gpu_benchmark
        self.key_prefix = hashlib.sha256(f"{source}\n{device}\n{_triton_version()}".encode()).hexdigest()[:24]
        self.chosen: dict[tuple, LaunchConfig] = {}

    def __call__(self, *buffers, xnumel: int, rnumel: int | None = None, symbols: tuple = ()):
        """`symbols`: the size symbols of a graph of symbolic sizes, after the element counts."""
        sizes = (xnumel,) if rnumel is None else (xnumel, rnumel)
        cfg = self.chosen.get(sizes) or self._choose(buffers, sizes, symbols)
        if self.lock is None:
            self.fn[cfg.grid(xnumel)](*buffers, *sizes, *symbols, **cfg.kwargs())
            return
        with self.lock:
            self.fn[cfg.grid(xnumel)](*buffers, *sizes, *symbols, **cfg.kwargs())

    def _choose(self, buffers, sizes, symbols=()) -> LaunchConfig:
        if not self.autotune:
            cfg = self.configs[0]
        else:
            name = f"{self.key_prefix}_{'x'.join(map(str, sizes))}"
            cfg = self._load(cache_dir() / "autotune" / f"{name}.json", name)
            if cfg is None:
                cfg = self._time_all(buffers, sizes, name, symbols)
            else:
                AutotuneStats.cache_hits += 1
        self.chosen[sizes] = cfg
        return cfg

    def _time_all(self, buffers, sizes, name, symbols=()) -> LaunchConfig:
        timings = []
        for cfg in self.configs:
            def launch(cfg=cfg):
                self.fn[cfg.grid(sizes[0])](*buffers, *sizes, *symbols, **cfg.kwargs())

            AutotuneStats.timed += 1
            try:
                timings.append((self.benchmark(launch), cfg))
            except Exception as e:  # noqa: BLE001  (e.g. out of shared memory: that config just loses)
                timings.append((float("inf"), cfg))
                last_error = e
        best_time, best = min(timings, key=lambda t: t[0])
        if best_time == float("inf"):
            raise last_error
        entry = {"key": name, "config": best.kwargs(), "timings_ms": {repr(c): t for t, c in timings}}
        try:  # this runs inside a call: a cache that cannot be written only costs the next process a retune
            folder = cache_files.writable_dir("triton") / "autotune"
            folder.mkdir(parents=True, exist_ok=True)
            cache_files.atomic_write(folder / f"{name}.json", json.dumps(entry).encode())
        except OSError:
            pass
        return best

    def _load(self, path, name) -> LaunchConfig | None:
        """The cached choice, if the file is whole, is this entry's, and names one of this kernel's
        candidates (any candidate computes the same values; the choice only sets the speed)."""
        try:
            entry = json.loads(path.read_text())
            kw = entry["config"] if entry.get("key") == name else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return next((c for c in self.configs if c.kwargs() == kw), None)


def _triton_version() -> str:
    import triton

    return triton.__version__
