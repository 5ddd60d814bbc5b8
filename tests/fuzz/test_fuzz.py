"""CI's fuzz run: fixed seeds per entry point and target, 0 WRONG/CRASH/DEAD allowed beyond the
known failures listed in known.py (which must still fail: delete an entry when its bug is fixed).

The long run is `python -m tests.fuzz --seed 0 --n 1000 --entry capture --target cpp` (README).
"""
import pytest

from fuzz.cli import FAILURES, run_seeds, shrink_failure
from fuzz.known import KNOWN

# (entry, target) -> seeds: a range (different per entry point, to cover more programs) plus one
# seed per known bug (known.py), so a fix shows up as a known entry that no longer fails. Triton
# runs under its interpreter here, so it gets few.
CI_SEEDS = {
    ("capture", "cpp"): (*range(0, 30), 149, 447, 517, 822),
    ("dynamo", "cpp"): (*range(30, 60), 447, 517, 671, 793, 822),
    ("capture", "triton"): (*range(0, 6), 19, 149, 162),
    ("dynamo", "triton"): (*range(6, 12), 27, 162),
    # dynamic=True (every size symbolic): F9's seeds (9, 27, 77: an index or divisor error rerun
    # with the inputs out of order; 181, 268: write_on_copy of a symbolic layout) and 793 (TorchDynamo's own)
    ("dynamo-dynamic", "cpp"): (*range(60, 75), 9, 27, 77, 181, 268, 793),
    ("capture-dynamic", "cpp"): (*range(75, 90), 9, 27, 181),
}
SHRINK_AT_MOST = 2  # new failures shrunk for the failure message (each up to a minute)


def test_known_failures_are_in_the_ci_seed_sets():
    for (entry, target, seed), (cls, why) in KNOWN.items():
        assert seed in CI_SEEDS[(entry, target)], f"{entry}/{target} seed {seed} is not run by CI: {why}"
        assert cls in FAILURES and why, (entry, target, seed)


@pytest.mark.parametrize("entry, target", list(CI_SEEDS), ids=[f"{e}-{t}" for e, t in CI_SEEDS])
def test_fuzz_ci_seeds(entry, target):
    seeds = CI_SEEDS[(entry, target)]
    results = run_seeds(seeds, entry, target, timeout=180)
    failing = {r["id"]: r for r in results if r["class"] in FAILURES}
    known = {seed: cls_why for (e, t, seed), cls_why in KNOWN.items() if (e, t) == (entry, target)}
    new = {s: r for s, r in failing.items() if s not in known or known[s][0] != r["class"]}
    fixed = sorted(s for s in known if s not in failing)
    lines = [f"seed {s}: {r['class']} ({r['kind']}) {r['detail'][:300]}" for s, r in sorted(new.items())]
    for s in sorted(new)[:SHRINK_AT_MOST]:
        script, _, _ = shrink_failure(s, entry, target, timeout=180, budget_s=60)
        lines.append(f"--- seed {s}, shrunk (python -m tests.fuzz --seeds {s} --entry {entry} --target {target} "
                     f"--shrink):\n{script}")
    lines += [f"seed {s} no longer fails: delete its entry in tests/fuzz/known.py ({known[s][1]})" for s in fixed]
    assert not new and not fixed, "\n".join(lines)
