"""Known failures: (entry, target, seed) -> the bug, in one place.

The CI test (test_fuzz.py) runs fixed seeds and fails on any WRONG/CRASH/DEAD that is not listed
here, and also on any entry listed here that no longer fails: when a fix lands, delete its
entries. Each reason names the bug (tests/fuzz/FINDINGS.md has the shrunk repro).
"""
KNOWN: dict[tuple[str, str, int], str] = {
}
