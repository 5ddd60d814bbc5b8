"""Buffer allocation for generated wrappers.

A fresh 64 MB CPU tensor costs 16384 page faults on first touch, each zeroing a 4 KB page; for a
memory-bound kernel that is several times the kernel itself (filling a new 64 MB buffer here takes
~90 ms, copying into an existing one ~18 ms). Large CPU buffers are therefore marked for
transparent huge pages (madvise MADV_HUGEPAGE; Linux, when THP is `madvise` or `always`), which cuts
the faults 512-fold. The memory and its contents are otherwise an ordinary torch tensor.
"""
from __future__ import annotations

import ctypes
import sys

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
