"""C++ side of error checks (see codegen/index_check.py): the checks, and the error flag of one .so.

The checks are branch-free (`bad |= out of range`, then index 0; `bad |= divisor == 0`, then
divisor 1), so a loop holding one still vectorises. `kiln_bad` is a local of each checking kernel, an OpenMP `reduction(|:...)` variable
of its parallel and simd loops (threads and lanes never race on it); the kernel ORs it into the
library's flag once at the end, with a relaxed atomic store taken only when it is set. The flag
is thread-local: the end of a kernel runs on the thread that called it (outside its parallel
regions), and ctypes calls run on the calling Python thread, so two Python threads running the
same library at once never see, or clear, each other's errors.
"""
from __future__ import annotations

import ctypes

from ..index_check import kernel_checks_indices

BAD = "kiln_bad"
# One flag per library, defined in the library's first unit and declared in the others (a graph's
# kernels may build as several translation units: codegen/cpp/build.py); hidden, so that each
# loaded library's references bind to its own flag.
FLAG_DEFINITION = 'extern "C" __attribute__((visibility("hidden"))) thread_local int kiln_index_error_flag = 0;\n'
FLAG_DECLARATION = 'extern "C" __attribute__((visibility("hidden"))) thread_local int kiln_index_error_flag;\n'
TAKE_FLAG = 'extern "C" int kiln_take_index_error(void) { return __atomic_exchange_n(&kiln_index_error_flag, 0, __ATOMIC_RELAXED); }\n'
SOURCE = FLAG_DECLARATION + r"""static inline int64_t kiln_check_index(int64_t i, int64_t n, int& bad) {
  const bool out = static_cast<uint64_t>(i) >= static_cast<uint64_t>(n);  // also i < 0
  bad |= out;
  return out ? 0 : i;
}
template <typename T> static inline T kiln_check_divisor(T b, int& bad) {
  const bool zero = b == T(0);
  bad |= zero;
  return zero ? T(1) : b;
}
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
