"""Build C++ sources with g++ into shared libraries, cached on disk by a hash of everything that matters.

Cache entries are written atomically (temp file + rename) under a lock, with a checksum beside
them; an entry whose checksum does not match is rebuilt, never loaded.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kiln import config

# No -ffast-math: results must stay within eager's IEEE behaviour (NaN/inf handling, no reassociation
# beyond the reduction order the kernels spell out); no contraction of a*b + c into an fma either, so
# elementwise arithmetic rounds exactly as eager's separate ops do. -fno-trapping-math changes no
# value (no kernel reads FP exception flags): it lets g++ if-convert selects guarded by a NaN check,
# e.g. `x != x ? x : (x < c ? 0 : y)`, which without AVX-512 masks it otherwise leaves as branches
# that stop the whole loop from vectorizing (seen on AVX2 / znver3 with g++ 12). -fwrapv: signed
# integer overflow wraps, as in eager (True + INT64_MAX is INT64_MIN), instead of being UB g++ optimizes on.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17", "-fno-math-errno", "-fno-trapping-math",
         "-ffp-contract=off", "-fwrapv"]


def cache_dir() -> Path:
    path = Path(config.cache_dir) / "cpp"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def compiler_version(cxx: str) -> str:
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def source_key(source: str) -> str:
    h = hashlib.sha256()
    for part in (source, " ".join(FLAGS), compiler_version(config.cxx)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class BuildStats:
    builds = 0  # g++ runs in this process (the cache test reads it)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _valid(lib: Path, check: Path) -> bool:
    return lib.exists() and check.exists() and check.read_text().strip() == _sha(lib)


def build(source: str) -> Path:
    """Path of a shared library built from `source`: from the cache when it holds a valid one."""
    key = source_key(source)
    d = cache_dir()
    lib, check, src = d / f"{key}.so", d / f"{key}.sha256", d / f"{key}.cpp"
    if _valid(lib, check):
        return lib
    with open(d / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per entry; others wait, then find it built
        if _valid(lib, check):
            return lib
        _atomic_write(src, source.encode())
        with tempfile.NamedTemporaryFile(dir=d, suffix=".so", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            with _progress(f"kiln: building C++ kernels ({src.name})"):
                proc = subprocess.run([config.cxx, *FLAGS, str(src), "-o", str(tmp_path)], capture_output=True, text=True)
            BuildStats.builds += 1
            if proc.returncode != 0:
                raise RuntimeError(f"g++ failed on {src}:\n{proc.stderr[-4000:]}")
            digest = _sha(tmp_path)
            os.replace(tmp_path, lib)
            _atomic_write(check, digest.encode())
        finally:
            tmp_path.unlink(missing_ok=True)
    return lib


def _atomic_write(path: Path, data: bytes):
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class _progress:
    """Print one line on stderr if the step takes more than `after` seconds, and its time when done."""

    def __init__(self, what: str, after: float = 1.0):
        self.what, self.after = what, after
        self.shown = False

    def _show(self):
        self.shown = True
        print(f"{self.what} ...", file=sys.stderr, flush=True)

    def __enter__(self):
        self.start = time.perf_counter()
        self.timer = threading.Timer(self.after, self._show)
        self.timer.daemon = True
        self.timer.start()

    def __exit__(self, *exc):
        self.timer.cancel()
        if self.shown:
            print(f"{self.what} done in {time.perf_counter() - self.start:.1f}s", file=sys.stderr, flush=True)


def load(lib: Path, kernel_arg_counts: dict[str, int]) -> dict:
    """ctypes functions for each kernel, all taking raw pointers."""
    handle = ctypes.CDLL(str(lib))
    fns = {}
    for name, n in kernel_arg_counts.items():
        fn = getattr(handle, name)
        fn.argtypes = [ctypes.c_void_p] * n
        fn.restype = None
        fns[name] = fn
    return fns
