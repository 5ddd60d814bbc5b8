"""The fuzzer's command line.

    python -m tests.fuzz --seed 0 --n 200 --entry capture --target cpp [--shrink] [--jobs 2]

Program k is generated from seed S+k alone (the same program for every entry point and target),
so `--seed X --n 1` reruns one program. Prints counts per class, the fallback budget (programs
that Kiln ran eagerly, by reason), the failures with their seeds, and with --shrink a minimal
self-contained repro for each failure. Exit status 1 when a program is WRONG, CRASH, DEAD or ERROR.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from .generate import Settings, generate
from .known import KNOWN
from .reasons import reason_class
from .repro import repro_script
from .worker import ENTRIES
from .runner import Pool
from .shrink import Shrinker

CLASSES = ("OK", "WRONG", "CRASH", "DEAD", "ERROR")
FAILURES = ("WRONG", "CRASH", "DEAD", "ERROR")


def run_seeds(seeds, entry: str, target: str, *, jobs: int = 1, timeout: float = 120.0,
              settings: Settings = Settings(), progress=None) -> list[dict]:
    """Generate and run one program per seed; results in seed order."""
    programs = {s: generate(s, settings) for s in seeds}
    results = {}
    with Pool(entry, target, jobs=jobs, timeout=timeout) as pool:
        for result in pool.map({"id": s, "source": p.source()} for s, p in programs.items()):
            results[result["id"]] = result
            if progress:
                progress(result, len(results), len(programs))
    return [results[s] for s in programs]


def shrink_failure(seed: int, entry: str, target: str, *, timeout: float = 120.0, budget_s: float = 300,
                   settings: Settings = Settings()) -> tuple[str, dict, int]:
    """(repro script, its result, worker runs spent) for a failing seed."""
    program = generate(seed, settings)
    with Pool(entry, target, timeout=timeout) as pool:
        def run(p):
            return pool.run_one({"id": seed, "source": p.source()})

        shrinker = Shrinker(program, run, budget_s=budget_s)
        small = shrinker.shrink()
        result = run(small)
    return repro_script(small, entry, target, result), result, shrinker.tries


def summary(results: list[dict], entry: str, target: str, seconds: float | None, jobs: int) -> str:
    counts = Counter(r["class"] for r in results)
    fell_back = [r for r in results if r.get("fallbacks")]
    n = len(results)
    seeds = [r["id"] for r in results]
    timing = f" in {seconds:.0f} s ({n / max(seconds, 1e-9):.2f} programs/s, {jobs} job(s))" if seconds else ""
    lines = [f"kiln fuzz: entry={entry} target={target} seeds {min(seeds)}..{max(seeds)} ({n} programs){timing}"]
    for cls in CLASSES:
        failed = [r["id"] for r in results if r["class"] == cls]
        line = f"  {cls:<6} {counts.get(cls, 0):5d}"
        if cls == "OK":
            line += f"   ({sum(1 for r in fell_back if r['class'] == 'OK')} of them FALLBACK: ran eagerly)"
        elif failed:
            line += "   seeds: " + ", ".join(str(s) for s in failed)
        lines.append(line)
    lines.append(f"fallback budget: {len(fell_back)} of {n} programs ({100 * len(fell_back) / max(n, 1):.1f}%) "
                 "ran (part) eagerly; by reason (a program may have several):")
    reasons = Counter(reason for r in fell_back for reason in {reason_class(m) for m in r["fallbacks"]})
    lines += [f"  {c:5d}  {reason}" for reason, c in reasons.most_common()]
    graphs = sum(r.get("graphs", 0) for r in results)
    if graphs:
        eager_whole = sum(r.get("graphs_eager", 0) for r in results)
        op_level = sum(r.get("graphs_op_fallback", 0) for r in results)
        lines.append(f"back-end graphs: {graphs}; run eagerly whole: {eager_whole} ({100 * eager_whole / graphs:.1f}%); "
                     f"compiled with op-level fallbacks: {op_level} ({100 * op_level / graphs:.1f}%)")
    aten = Counter(op for r in results for op in r.get("aten_fallback_ops", ()))
    if aten:
        lines.append("compiled with ATen fallback ops inside the graph: "
                     + ", ".join(f"{op} ({c})" for op, c in aten.most_common()))
    not_kiln = [r["id"] for r in results if r.get("not_kiln")]
    if not_kiln:
        lines.append(f"TorchDynamo's own behaviour (fails the same with its graph run by torch.fx.Interpreter; "
                     "counted OK): seeds "
                     + ", ".join(map(str, not_kiln)))
    rescued = sum(1 for r in results if r.get("rescued_by_reference"))
    if rescued:
        lines.append(f"float results outside eager's tolerance but as close to the float64 reference as eager's "
                     f"(passed): {rescued} programs")
    dropped = [r["id"] for r in results if r.get("dead_error_dropped")]
    if dropped:
        lines.append("eager raised only in ops whose results nothing reads; Kiln drops those ops (documented; "
                     "passed: the program without them gives Kiln's result): seeds " + ", ".join(map(str, dropped)))
    strides = sum(1 for r in results if r.get("strides"))
    if strides:
        lines.append(f"outputs with strides other than eager's (not a failure): {strides} programs")
    failures = [r for r in results if r["class"] in FAILURES]
    if failures:
        lines.append("failures:")
    for r in failures:
        where = {True: " [front end: the same with its graph run by torch.fx.Interpreter]", False: " [back end]"}
        lines.append(f"  seed {r['id']}: {r['class']} ({r['kind']}){where.get(r.get('front_end_alone'), '')} "
                     f"{r['detail'][:400]}")
        if r.get("stderr"):  # a dead worker's last words
            lines += [f"      | {line}" for line in r["stderr"].strip().splitlines()[-3:]]
        known = KNOWN.get((entry, target, r["id"]))
        if known:
            lines.append(f"      known: {known[1]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--n", type=int, default=100, help="number of programs (seeds seed..seed+n-1)")
    parser.add_argument("--seeds", help="comma-separated seeds instead of --seed/--n")
    parser.add_argument("--entry", choices=ENTRIES, default="capture",
                        help="-dynamic: compiled with dynamic=True (every size symbolic)")
    parser.add_argument("--target", choices=("cpp", "triton"), default="cpp")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per program before it is DEAD")
    parser.add_argument("--shrink", action="store_true", help="shrink each failure to a minimal repro")
    parser.add_argument("--shrink-budget", type=float, default=300.0, help="seconds per failure")
    parser.add_argument("--json", help="write every result (one JSON object a line) to this file")
    parser.add_argument("--print", dest="show", action="store_true", help="print the programs, run nothing")
    parser.add_argument("--summarize", metavar="FILE", help="print the summary of a --json file, run nothing")
    args = parser.parse_args(argv)
    if args.summarize:
        with open(args.summarize) as f:
            print(summary([json.loads(line) for line in f], args.entry, args.target, None, args.jobs))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(args.seed, args.seed + args.n))
    if args.show:
        for s in seeds:
            print(f"# seed {s}\n{generate(s).source()}")
        return 0

    def progress(result, done, total):
        if result["class"] != "OK" or done % 50 == 0:
            print(f"[{done}/{total}] seed {result['id']}: {result['class']} {result.get('detail', '')[:160]}",
                  file=sys.stderr, flush=True)

    start = time.monotonic()
    results = run_seeds(seeds, args.entry, args.target, jobs=args.jobs, timeout=args.timeout, progress=progress)
    print(summary(results, args.entry, args.target, time.monotonic() - start, args.jobs))
    if args.json:
        with open(args.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    failures = [r for r in results if r["class"] in FAILURES]
    if args.shrink:
        for r in failures:
            script, result, tries = shrink_failure(r["id"], args.entry, args.target, timeout=args.timeout,
                                                   budget_s=args.shrink_budget)
            print(f"\n# ---- seed {r['id']}: shrunk in {tries} runs ----\n{script}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
