"""The model-type sweep's command line.

    python -m tests.models --jobs 2                 # every model type (hours on 2 cores)
    python -m tests.models --only llama bert vit    # some
    python -m tests.models --part 1/4 --json p1.json   # a quarter of them (every 4th type)
    python -m tests.models --merge p1.json p2.json ... --json all.json   # summary of parts
    python -m tests.models --eager-only             # only build and run eagerly (no Kiln)

Prints one line per model as it finishes, then the summary: models tried, ran eagerly, compiled
fully, with op-level fallbacks (by ATen op and reason), with whole-graph fallbacks (graphs and
models, by reason class), WRONG, CRASH, DEAD, and the models TorchDynamo itself fails on. Each model
runs in a worker process (the fuzzer's runner, tests/fuzz/runner.py): one that kills its worker or
runs past --timeout is DEAD. Exit status 1 when a model is WRONG, CRASH, DEAD or ERROR.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from .check import OUTCOMES
from .zoo import model_types

try:
    from fuzz.runner import Pool
except ImportError:  # python -m tests.models
    from tests.fuzz.runner import Pool

FAILURES = ("WRONG", "CRASH", "DEAD", "ERROR")


def run(names: list[str], *, jobs: int = 1, timeout: float = 300.0, memory_gb: float | None = 8.0,
        progress=None) -> list[dict]:
    """Every model type's result (check.run_model), in the order of `names`."""
    results = {}
    with Pool("dynamo", "cpp", jobs=jobs, timeout=timeout, module=f"{__package__}.worker", args=[],
              dead={}, memory_gb=memory_gb) as pool:
        for r in pool.map({"id": n} for n in names):
            if r["class"] == "DEAD":
                r["error"] = f"{r['detail']}; stderr: {r.get('stderr', '')[-600:]}"
            results[r["id"]] = r
            if progress:
                progress(r, len(results), len(names))
    return [results[n] for n in names]


def line(r: dict) -> str:
    o = r["class"]
    if o == "SKIP":
        return f"{r['id']:32s} SKIP      {r['skip'][:140]}"
    if o == "EAGER_OK":
        return f"{r['id']:32s} EAGER_OK  tier {r['tier']}, {r['params']} params, {r['eager_s']:.1f}s, {r['inputs']}"
    if o in ("DEAD", "ERROR", "DYNAMO", "CRASH"):
        return f"{r['id']:32s} {o:9s} {(r.get('dynamo_error') or r.get('error') or r.get('detail') or '')[:140]}"
    text = (f"{r['id']:32s} {o:9s} graphs {r['graphs']}, compiled {r['compiled']}, "
            f"kernels {r.get('kernels', 0)}, {r.get('compile_s', 0):.0f}s")
    if r.get("fallbacks"):
        text += f", op-level fallbacks {', '.join(op for op, _ in r['fallbacks'])}"
    for ref in r.get("refusals", []):
        part = "a split graph's part " if ref.get("part") else ""
        text += f"\n{'':42s}{part}refused ({ref['class']}): {ref['reason'][:160]}"
    for msg in r.get("call_fallbacks", []):
        text += f"\n{'':42s}call-time fallback: {msg[:160]}"
    if r.get("wrong"):
        text += f"\n{'':42s}WRONG: {r['wrong'][:200]}"
    return text


def summary(results: list[dict], seconds: float | None = None) -> str:
    counts = Counter(r["class"] for r in results)
    ran = [r for r in results if r["class"] not in ("SKIP",)]
    compiled_models = [r for r in ran if "graphs" in r]
    graphs = sum(r["graphs"] for r in compiled_models)
    refused_graphs = sum(1 for r in compiled_models for ref in r["refusals"] if not ref.get("part"))
    parts = sum(r.get("parts", 0) for r in compiled_models)
    refused_parts = sum(1 for r in compiled_models for ref in r["refusals"] if ref.get("part"))
    by_class, models_by_class = Counter(), {}
    for r in compiled_models:
        for ref in r["refusals"]:
            by_class[ref["class"]] += 1
            models_by_class.setdefault(ref["class"], set()).add(r["id"])
    ops, models_by_op = Counter(), {}
    for r in compiled_models:
        for op, reason in r["fallbacks"]:
            ops[(op, reason)] += 1
            models_by_op.setdefault((op, reason), []).append(r["id"])
    refusing = [r for r in compiled_models if r["refusals"]]
    call_fb = [r for r in compiled_models if r.get("call_fallbacks")]
    out = [f"model types tried: {len(results)}" + (f" in {seconds:.0f}s" if seconds else "")]
    out.append(f"ran eagerly (built offline, small): {len(ran)}; skipped: {counts['SKIP']}")
    out.append("outcomes: " + ", ".join(f"{o} {counts[o]}" for o in OUTCOMES + ("ERROR",) if counts[o]))
    out.append(f"graphs TorchDynamo handed Kiln: {graphs}; compiled {graphs - refused_graphs}, "
               f"refused whole {refused_graphs}" + (f" ({100 * refused_graphs / graphs:.1f}%)" if graphs else "")
               + f"; split at data-dependent ops {sum(r.get('split', 0) for r in compiled_models)}"
               + f" ({parts} parts, {refused_parts} refused whole)")
    out.append(f"models with a whole-graph refusal: {len(refusing)} of {len(compiled_models)}"
               f"; with a call-time fallback: {len(call_fb)}")
    if by_class:
        out.append("whole-graph refusals by class (graphs, models, examples):")
        for cls, n in by_class.most_common():
            names = sorted(models_by_class[cls])
            out.append(f"  {cls:32s} {n:4d} {len(names):4d}  {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}")
    if ops:
        out.append("op-level fallbacks (ATen op: reason; models, examples):")
        for (op, reason), n in ops.most_common():
            names = models_by_op[(op, reason)]
            out.append(f"  {op}: {reason[:100]}\n  {'':48s} {n:4d}  {', '.join(names[:5])}{' ...' if n > 5 else ''}")
    for o in FAILURES + ("DYNAMO",):
        bad = [r for r in results if r["class"] == o]
        if bad:
            out.append(f"{o}:")
            out += [f"  {line(r).strip()}" for r in bad]
    return "\n".join(out)


def _load(path: str) -> list[dict]:
    """A --json file's results, or a .jsonl file's (the results of a run so far)."""
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()] if path.endswith(".jsonl") else json.load(f)["results"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="model types (default: every one)")
    ap.add_argument("--part", help="K/N: every N-th model type from the K-th (1-based)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    ap.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit per worker")
    ap.add_argument("--skip-done", metavar="FILE", nargs="+", help="leave out the models these result files hold")
    ap.add_argument("--json", help="write every result to this file")
    ap.add_argument("--merge", nargs="+", metavar="FILE", help="summarise these result files instead of running")
    ap.add_argument("--eager-only", action="store_true", help="build and run eagerly only")
    args = ap.parse_args(argv)
    if args.merge:
        results = list({r["id"]: r for path in args.merge for r in _load(path)}.values())  # a later file's rerun wins
        seconds = None
    else:
        names = args.only or [t.name for t in model_types()]
        unknown = sorted(set(names) - {t.name for t in model_types()})
        if unknown:
            ap.error(f"unknown model types: {', '.join(unknown)}")
        if args.part:
            k, n = map(int, args.part.split("/"))
            names = names[k - 1::n]
        if args.skip_done:
            done = {r["id"] for path in args.skip_done for r in _load(path)}
            names = [n for n in names if n not in done]
        if args.eager_only:
            import os
            os.environ["KILN_MODELS_EAGER_ONLY"] = "1"
        start = time.time()

        def progress(r, i, n):
            print(f"[{i}/{n}] {line(r)}", flush=True)
            if args.json:  # results so far, one a line, for a run cut short (--merge reads it)
                with open(args.json + "l", "a") as f:
                    f.write(json.dumps(r, default=str) + "\n")

        results = run(names, jobs=args.jobs, timeout=args.timeout, memory_gb=args.memory_gb, progress=progress)
        seconds = time.time() - start
    text = summary(results, seconds)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": text, "results": results}, f, indent=1, default=str)
    return 1 if any(r["class"] in FAILURES for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
