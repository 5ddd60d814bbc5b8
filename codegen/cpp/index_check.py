"""C++ side of index checks (see codegen/index_check.py): the check, and the error flag of one .so.

The check is branch-free (`bad |= out of range`, then index 0), so a loop holding one still
vectorises. `kiln_bad` is a local of each checking kernel, an OpenMP `reduction(|:...)` variable
of its parallel and simd loops (threads and lanes never race on it); the kernel ORs it into the
library's flag once at the end, with a relaxed atomic store taken only when it is set.
"""
from __future__ import annotations

import ctypes

from ..index_check import kernel_checks_indices

BAD = "kiln_bad"
SOURCE = r"""
static int kiln_index_error_flag = 0;
static inline int64_t kiln_check_index(int64_t i, int64_t n, int& bad) {
  const bool out = static_cast<uint64_t>(i) >= static_cast<uint64_t>(n);  // also i < 0
  bad |= out;
  return out ? 0 : i;
}
extern "C" int kiln_take_index_error(void) { return __atomic_exchange_n(&kiln_index_error_flag, 0, __ATOMIC_RELAXED); }
"""


def prologue(kernel) -> list[str]:
    return [f"  int {BAD} = 0;"] if kernel_checks_indices(kernel) else []


def epilogue(kernel) -> list[str]:
    return [f"  if ({BAD}) __atomic_store_n(&kiln_index_error_flag, 1, __ATOMIC_RELAXED);"] \
        if kernel_checks_indices(kernel) else []


def omp_clause(kernel) -> str:
    """Added to the kernel's `omp parallel for` and `omp simd` pragmas."""
    return f" reduction(|:{BAD})" if kernel_checks_indices(kernel) else ""


def flag_reader(library):
    """() -> bool: whether a kernel of `library` met a bad index since the last read (clears it)."""
    fn = ctypes.CDLL(str(library)).kiln_take_index_error
    fn.argtypes, fn.restype = [], ctypes.c_int

    def read() -> bool:
        return bool(fn())

    return read
