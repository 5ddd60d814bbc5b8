"""Build C++ sources with g++ into shared libraries, cached on disk by a hash of everything that matters.

An entry is `<key>.so` with `<key>.sha256` beside it, holding `<key> <sha256 of the .so>`: an entry
whose record does not name its own key and the library's digest (truncated, corrupted, or another
entry's pair copied over it) is rebuilt, never loaded. The library also carries its key as the
symbol `kiln_cache_key`, checked once loaded, so a file swapped between the check and the load is
not used either. Entries are written atomically (codegen/cache_files.py) under a file lock (one
builder per entry, across threads and processes); a read-only cache folder is still read, and new
entries then go to a private folder of the process.
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

from .. import cache_files

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
    return cache_files.cache_dir("cpp")


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
    builds = 0  # libraries built in this process (the cache test reads it)
    units = 0   # translation units of the last one


KEY_SYMBOL = "kiln_cache_key"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(key: str, library: bytes) -> str:
    return f"{key} {_sha(library)}\n"


def _valid(lib: Path, check: Path, key: str) -> bool:
    """The entry is whole and is this key's: its record names the key and the library's digest."""
    library, record = cache_files.read_bytes(lib), cache_files.read_bytes(check)
    return library is not None and record is not None and record.decode(errors="replace") == _record(key, library)


def _entry(d: Path, key: str) -> tuple[Path, Path, Path]:
    return d / f"{key}.so", d / f"{key}.sha256", d / f"{key}.cpp"


def build(source: str, parts=None) -> Path:
    """Path of a shared library built from `source`: from the cache when it holds a valid one.
    `parts` (a render.CppSource whose text is `source`) lets a large graph build as several
    translation units at once, each starting from the precompiled prelude."""
    key = source_key(source)
    lib, check, _ = _entry(cache_dir(), key)
    if _valid(lib, check, key):
        return lib
    try:
        return _build_locked(source, parts, key, cache_files.writable_dir("cpp"))
    except OSError:  # a lock or entry file we may not write (read-only, full disk): build where we may
        return _build_locked(source, parts, key, cache_files.private_dir("cpp"))


def _build_locked(source: str, parts, key: str, d: Path) -> Path:
    lib, check, src = _entry(d, key)
    with open(d / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per entry; others wait, then find it built
        if _valid(lib, check, key):
            return lib
        # the key symbol goes into the file g++ reads, after the key (a hash of `source`) is known
        key_symbol = f'\nextern "C" const char {KEY_SYMBOL}[] = "{key}";\n'
        cache_files.atomic_write(src, (source + key_symbol).encode())
        fd, tmp_name = tempfile.mkstemp(dir=d, prefix=f"{key}.", suffix=".so")
        os.close(fd)
        tmp_path = Path(tmp_name)
        try:
            with _progress(f"kiln: building C++ kernels ({src.name})"):
                units = _units(parts, key_symbol, d) if parts is not None else None
                try:
                    if units is not None:
                        _build_units(units, key, d, tmp_path)
                        BuildStats.units = len(units)
                except RuntimeError:  # e.g. a damaged precompiled header: once more as one plain unit
                    _forget_prelude_header(parts.prelude)
                    units = None
                if units is None:
                    _run([config.cxx, *FLAGS, str(src), "-o", str(tmp_path)], src)
                    BuildStats.units = 1
            BuildStats.builds += 1
            record = _record(key, tmp_path.read_bytes())
            os.replace(tmp_path, lib)
            cache_files.atomic_write(check, record.encode())
        finally:
            tmp_path.unlink(missing_ok=True)
    return lib


def _run(command: list[str], src) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"g++ failed on {src}:\n{proc.stderr[-4000:]}")


# A graph's kernels go into several translation units, built at once, when there is enough code to
# keep more than one core busy (below this many characters of kernels, one unit: a unit costs a g++
# start and the precompiled prelude's load, about 40 ms here).
UNIT_MIN_CHARS = 6000


def _units(parts, key_symbol: str, d: Path) -> list[str] | None:
    """The texts of the translation units, each including the precompiled prelude (the prelude's
    text while the cache is new); None where one plain unit is as good."""
    header = prelude_header(parts.prelude) if _cache_in_use(d) else None
    kernels = list(parts.kernels.values())
    size = sum(map(len, kernels))
    n = min(len(kernels), os.cpu_count() or 1, max(1, size // UNIT_MIN_CHARS))
    if header is None and n == 1:
        return None
    groups = [[] for _ in range(n)]
    loads = [0] * n
    for text in sorted(kernels, key=len, reverse=True):  # largest first, into the lightest unit
        i = loads.index(min(loads))
        groups[i].append(text)
        loads[i] += len(text)
    head = (f'#include "{header}"\n' if header else parts.prelude) + parts.shared
    return [head + (parts.defined_once + key_symbol if i == 0 else "") + "\n\n".join(g) + "\n"
            for i, g in enumerate(groups)]


def _build_units(units: list[str], key: str, d: Path, out: Path) -> None:
    if len(units) == 1:
        unit = d / f"{key}.unit0.cpp"
        cache_files.atomic_write(unit, units[0].encode())
        try:
            _run([config.cxx, *FLAGS, str(unit), "-o", str(out)], unit)
        finally:
            unit.unlink(missing_ok=True)
        return
    sources = [d / f"{key}.unit{i}.cpp" for i in range(len(units))]
    objects = [s.with_suffix(".o") for s in sources]
    try:
        for path, text in zip(sources, units):
            cache_files.atomic_write(path, text.encode())
        compile_flags = [f for f in FLAGS if f != "-shared"]
        procs = [(s, subprocess.Popen([config.cxx, *compile_flags, "-c", str(s), "-o", str(o)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                 for s, o in zip(sources, objects)]
        errors = [(s, p.communicate()[1]) for s, p in procs]
        failed = [(s, err) for (s, err), (_, p) in zip(errors, procs) if p.returncode != 0]
        if failed:
            raise RuntimeError(f"g++ failed on {failed[0][0]}:\n{failed[0][1][-4000:]}")
        _run([config.cxx, "-shared", "-fopenmp", *map(str, objects), "-o", str(out)], sources[0])
    finally:
        for path in (*sources, *objects):
            path.unlink(missing_ok=True)


_PCH_LOCK = threading.Lock()
# The precompiled prelude costs about 0.4 s to build and saves about 0.1 s per build: it is made
# once the cache holds this many libraries (a cache in use), not by a process's first builds.
PCH_AFTER_LIBRARIES = 4


@functools.lru_cache(maxsize=None)
def _libraries_at_start(d: str) -> int:
    try:
        return sum(1 for entry in os.scandir(d) if entry.name.endswith(".so"))
    except OSError:
        return 0


def _cache_in_use(d: Path) -> bool:
    return _libraries_at_start(str(d)) + BuildStats.builds >= PCH_AFTER_LIBRARIES


@functools.lru_cache(maxsize=None)
def _prelude_header_cached(prelude: str, d: str) -> str | None:
    key = source_key(prelude)
    header, gch = Path(d) / f"prelude-{key}.h", Path(d) / f"prelude-{key}.h.gch"
    with open(Path(d) / f"prelude-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (header.exists() and gch.exists() and (Path(d) / f"prelude-{key}.ok").exists()):
            cache_files.atomic_write(header, prelude.encode())
            tmp = Path(tempfile.mkstemp(dir=d, prefix=f"prelude-{key}.", suffix=".gch")[1])
            try:
                compile_flags = [f for f in FLAGS if f != "-shared"]
                proc = subprocess.run([config.cxx, *compile_flags, "-x", "c++-header", str(header), "-o", str(tmp)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    return None
                os.replace(tmp, gch)
                cache_files.atomic_write(Path(d) / f"prelude-{key}.ok", b"")
            finally:
                tmp.unlink(missing_ok=True)
    return str(header)


def _forget_prelude_header(prelude: str) -> None:
    """The precompiled prelude failed a build: rebuilt on next use, in this process and others."""
    with _PCH_LOCK:
        _prelude_header_cached.cache_clear()
        (cache_files.writable_dir("cpp") / f"prelude-{source_key(prelude)}.ok").unlink(missing_ok=True)


def prelude_header(prelude: str) -> str | None:
    """Path of the prelude as a header with its precompiled form (.gch) beside it, built once per
    prelude, flags and compiler; None if it cannot be built (the units then build without it).
    g++ uses the .gch only when the flags match, and reads the header itself otherwise: never wrong."""
    with _PCH_LOCK:
        try:
            return _prelude_header_cached(prelude, str(cache_files.writable_dir("cpp")))
        except OSError:
            return None


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
    key = lib.name.removesuffix(".so")
    try:
        found = (ctypes.c_char * (len(key) + 1)).in_dll(handle, KEY_SYMBOL).value.decode()
    except (ValueError, UnicodeDecodeError):
        found = None
    if found != key:
        raise cache_files.CacheEntryError(f"{lib} is not the library built for its key (it says {found!r}); "
                                          "another writer replaced it")
    fns = {}
    for name, n in kernel_arg_counts.items():
        fn = getattr(handle, name)
        fn.argtypes = [ctypes.c_void_p] * n
        fn.restype = None
        fns[name] = fn
    return fns
