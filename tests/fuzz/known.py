"""Known failures: (entry, target, seed) -> (class, the bug), in one place.

The CI test (test_fuzz.py) runs fixed seeds and fails on any WRONG/CRASH/DEAD that is not listed
here (or fails with another class), and on any entry listed here that no longer fails: when a fix
lands, delete its entries. Each entry names the bug; tests/fuzz/FINDINGS.md has its shrunk repro
under the same F-number. Seeds map to programs through the generator: a change to the generator
or the op table changes every program, so rerun the CI seeds and rewrite this list in the same
commit.
"""

# Empty: every bug the CI seeds found is fixed (FINDINGS.md keeps their history).
KNOWN: dict[tuple[str, str, int], tuple[str, str]] = {}
