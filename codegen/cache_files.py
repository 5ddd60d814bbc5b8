"""Kiln's on-disk caches (built C++ libraries, Triton modules, autotuning choices): where they
live and how entries are written and trusted.

- `cache_dir(kind)` is `KILN_CACHE_DIR/<kind>`. When that cannot be written (a read-only home, a
  shared cache owned by someone else), `writable_dir(kind)` is a private folder of this process
  instead: Kiln still compiles, it just does not share what it builds. Entries already in the
  shared folder are still read.
- `atomic_write` writes a temp file unique to the writer (`mkstemp`: threads of one process too)
  and renames it over the entry, so a reader sees the old file or the whole new one.
- Every entry names its own key inside (a checksum record `<key> <sha256>`, a key symbol in a
  library, a key line in a module, a key field in JSON), so an entry copied over another's name
  (truncated, corrupted, or swapped together with its checksum) is refused and rebuilt, never used.
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from kiln import config

_private: dict[str, Path] = {}
_private_lock = threading.Lock()


def cache_dir(kind: str) -> Path:
    """The shared folder for `kind` (it may not exist, or be read-only)."""
    return Path(config.cache_dir) / kind


def writable_dir(kind: str) -> Path:
    """Where to write new `kind` entries: the shared folder when possible, else a private one."""
    path = cache_dir(kind)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except OSError:
        pass
    return private_dir(kind)


def private_dir(kind: str) -> Path:
    """A folder of this process only, for when the shared one cannot be written."""
    with _private_lock:
        if kind not in _private:
            _private[kind] = Path(tempfile.mkdtemp(prefix=f"kiln-{kind}-"))
        return _private[kind]


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bytes(path: Path) -> bytes | None:
    """The entry's bytes, or None if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


class CacheEntryError(RuntimeError):
    """A cache entry changed under Kiln between its check and its use (another writer's file)."""
