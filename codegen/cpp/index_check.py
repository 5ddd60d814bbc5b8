"""C++ side of index checks (see codegen/index_check.py): the check and the error flag of one .so."""
from __future__ import annotations

import ctypes

# The flag is written only on the bad path (a relaxed atomic store, safe under OpenMP), so the
# check costs a compare and a rarely-taken branch in the loop.
SOURCE = r"""
static int kiln_index_error_flag = 0;
static inline int64_t kiln_check_index(int64_t i, int64_t n) {
  if (__builtin_expect(i < 0 || i >= n, 0)) {
    __atomic_store_n(&kiln_index_error_flag, 1, __ATOMIC_RELAXED);
    return 0;
  }
  return i;
}
extern "C" int kiln_take_index_error(void) { return __atomic_exchange_n(&kiln_index_error_flag, 0, __ATOMIC_RELAXED); }
"""


def flag_reader(library):
    """() -> bool: whether a kernel of `library` met a bad index since the last read (clears it)."""
    fn = ctypes.CDLL(str(library)).kiln_take_index_error
    fn.argtypes, fn.restype = [], ctypes.c_int

    def read() -> bool:
        return bool(fn())

    return read
