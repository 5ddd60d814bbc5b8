"""Buffer allocation for generated wrappers.

A fresh 64 MB CPU tensor costs 16384 page faults on first touch, each zeroing a 4 KB page; for a
memory-bound kernel that is several times the kernel itself (filling a new 64 MB buffer here takes
~90 ms, copying into an existing one ~18 ms). So:
- large CPU buffers are marked for transparent huge pages (madvise MADV_HUGEPAGE; Linux, when THP
  is `madvise` or `always`), which cuts the faults 512-fold;
- each compiled graph keeps the storage of its buffers of POOL_MIN_BYTES and more (outputs
  included) in a BufferPool and hands a storage out again, in a new tensor, once nothing else holds
  it: a caller that drops the previous call's outputs gets memory that is already mapped. Buffers
  that size come from mmap and go back to the system when freed, so a fresh one faults every page
  again (three fresh 2 MB buffers cost ~5 ms here, ten times the kernel writing them). A storage
  the caller still holds (through any tensor or view) is never reused. The cost is up to
  POOL_PER_SIZE buffers per size kept mapped while the compiled function lives (set REUSE = False
  to turn pooling off).
"""
from __future__ import annotations

import ctypes
import sys
import threading

import torch

HUGE_MIN_BYTES = 4 << 20  # smaller buffers hold no aligned 2 MB range worth the system call
_PAGE = 4096
_MADV_HUGEPAGE = 14


def _load_madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_madvise = _load_madvise()


def empty_strided(shape, strides, *, dtype, device):
    t = torch.empty_strided(shape, strides, dtype=dtype, device=device)
    nbytes = t.untyped_storage().nbytes()
    if _madvise is not None and nbytes >= HUGE_MIN_BYTES and t.device.type == "cpu":
        start = (t.data_ptr() + _PAGE - 1) & ~(_PAGE - 1)
        end = (t.data_ptr() + nbytes) & ~(_PAGE - 1)
        _madvise(start, end - start, _MADV_HUGEPAGE)  # a hint: failure only means small pages
    return t


REUSE = True
POOL_MIN_BYTES = 128 << 10  # glibc's default mmap threshold: smaller blocks are recycled by malloc
POOL_PER_SIZE = 8  # a graph often holds several buffers of one size at once (q, k, v, ...)
_use_count = getattr(torch._C, "_storage_Use_Count", None)


class BufferPool:
    """CPU buffers of one compiled graph, reused across calls once nothing else holds them."""

    def __init__(self):
        self.storages: dict[tuple, list] = {}
        self.lock = threading.Lock()  # two threads calling one graph must not take the same storage

    def empty_strided(self, shape, strides, *, dtype, device):
        nbytes = _nbytes(shape, strides, dtype)
        if not REUSE or _use_count is None or nbytes < POOL_MIN_BYTES or torch.device(device).type != "cpu":
            return empty_strided(shape, strides, dtype=dtype, device=device)
        key = (nbytes, dtype)
        with self.lock:
            kept = self.storages.setdefault(key, [])
            for storage in kept:
                if _use_count(storage._cdata) == 1:  # only this pool holds it
                    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)
            t = empty_strided(shape, strides, dtype=dtype, device=device)
            if len(kept) < POOL_PER_SIZE:
                kept.append(t.untyped_storage())
            return t


def _nbytes(shape, strides, dtype) -> int:
    if any(s == 0 for s in shape):
        return 0
    return (1 + sum((s - 1) * st for s, st in zip(shape, strides))) * dtype.itemsize
