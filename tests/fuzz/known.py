"""Known failures: (entry, target, seed) -> (class, the bug), in one place.

The CI test (test_fuzz.py) runs fixed seeds and fails on any WRONG/CRASH/DEAD that is not listed
here (or fails with another class), and on any entry listed here that no longer fails: when a fix
lands, delete its entries. Each entry names the bug; tests/fuzz/FINDINGS.md has its shrunk repro
under the same F-number. Seeds map to programs through the generator: a change to the generator
or the op table changes every program, so rerun the CI seeds and rewrite this list in the same
commit.
"""
F1 = "F1: integer // and % by zero return a result; eager raises RuntimeError (ZeroDivisionError)"
F2 = "F2: int64 INT_MIN // -1 kills the process (SIGFPE) in the C++ kernel"
F3 = "F3: float32 std/var of values near 1e30 overflow to inf (eager: finite)"
F4 = "F4: Python constants equal under == are merged (x / False computed as x / -0.0)"
F5 = "F5: an eager fallback runs gm.forward, whose code prints (-1e-30) ** x as -1e-30 ** x"
F6 = "F6: an out-of-range index or a division by zero in an op whose result is unused raises nothing"
F7 = "F7: Triton: vector_norm over a zero-size expanded input kills the process (SIGSEGV)"

KNOWN: dict[tuple[str, str, int], tuple[str, str]] = {
    ("capture", "cpp", 19): ("WRONG", F6),
    ("dynamo", "cpp", 671): ("WRONG", F6),
    ("capture", "triton", 19): ("WRONG", F6),
    ("capture", "triton", 162): ("DEAD", F7),
    ("dynamo", "triton", 162): ("DEAD", F7),
}
