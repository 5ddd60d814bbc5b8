"""Cold compile of whole models: torch.compile with Inductor vs Kiln, each first call in a fresh
process with fresh caches, split into where the time goes.

Usage (from the repository root, in the virtualenv):

    python bench/cold_compile.py                       # every model of bench/models.py (full sizes)
    python bench/cold_compile.py --only gpt2 --only resnet18
    python bench/cold_compile.py --markdown
    python bench/cold_compile.py --child NAME METHOD    # (internal) one first call, prints JSON

What is measured, per model and method, in a new process (torch, TorchDynamo, Inductor and Kiln
imported up front in every child: imports are not counted):
  * cold: KILN_CACHE_DIR and TORCHINDUCTOR_CACHE_DIR empty; warm: a second process on the same
    folders.
  * first call: compile + one inference call (torch.no_grad), wall seconds.
  * back end: seconds inside the backend call(s) (Inductor's compile_fx, Kiln's compile_fx), by a
    timing wrapper around the backend; for Kiln also its stages (kiln.logs.stage_totals(): tracing
    to ATen, functionalize, decompose, lower, schedule, render, C++ build, wrapper).
  * capture: the rest of the first call (TorchDynamo's tracing, or Kiln's own capture, and the one
    call itself).
Methods: inductor = torch.compile(model); dynamo+kiln = torch.compile(model, backend="kiln");
kiln = kiln.compile(model).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("inductor", "dynamo+kiln", "kiln")


def child(name: str, method: str) -> None:
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import torch

    from cpu_bench import preimport

    preimport()
    import kiln
    from kiln import logs
    import models

    module, inputs = models.make(name, quick=False)
    module.eval()
    backend_seconds = [0.0]

    def timed(backend):
        def call(gm, example_inputs, **kwargs):
            start = time.perf_counter()
            try:
                return backend(gm, example_inputs, **kwargs)
            finally:
                backend_seconds[0] += time.perf_counter() - start
        return call

    if method == "inductor":
        from torch._inductor.compile_fx import compile_fx

        compiled = torch.compile(module, backend=timed(compile_fx))
    elif method == "dynamo+kiln":
        compiled = torch.compile(module, backend=timed(kiln.compile_fx))
    else:
        compiled = kiln.compile(module, backend=timed(kiln.compile_fx))
    if hasattr(logs, "reset_stage_totals"):  # (older checkouts, for before/after runs, have no stage clock)
        logs.reset_stage_totals()
    with torch.no_grad():
        start = time.perf_counter()
        compiled(*inputs)
        first = time.perf_counter() - start
    stages = logs.stage_totals() if hasattr(logs, "stage_totals") else {}
    print(json.dumps({"first": first, "backend": backend_seconds[0], "stages": stages}))


def run_child(name, method, env, timeout=900):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, method], env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name, log, methods=METHODS):
    row = {}
    for method in methods:
        with tempfile.TemporaryDirectory() as kc, tempfile.TemporaryDirectory() as ic:
            env = {**os.environ, "KILN_CACHE_DIR": kc, "TORCHINDUCTOR_CACHE_DIR": ic, "KILN_STRICT": "1",
                   "HF_HUB_OFFLINE": "1"}
            cold = run_child(name, method, env)
            warm = run_child(name, method, env)
        row[method] = {"cold": cold, "warm": warm}
        log(f"  {name}/{method}: cold {cold.get('first', cold.get('error'))}, warm {warm.get('first', warm.get('error'))}")
    return row


def _s(result, key):
    return f"{result[key]:.2f}" if key in result else "FAILED"


def table(rows) -> str:
    lines = ["| model | inductor first call s (back end) | dynamo+kiln first call s (back end) | kiln first call s "
             "(back end) | back end: inductor / dynamo+kiln | first call: inductor / dynamo+kiln | first call: "
             "inductor / kiln | Kiln stages, dynamo+kiln cold (s) | warm first call s: inductor / dynamo+kiln / kiln "
             "(Kiln back end) | Kiln stages, dynamo+kiln warm (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    ratios = {"backend": [], "first": [], "kiln": []}
    for name, row in rows.items():
        ind, dk, k = (row[m]["cold"] for m in METHODS)
        cells = [f"{_s(r, 'first')} ({_s(r, 'backend')})" for r in (ind, dk, k)]
        ok = all("first" in r for r in (ind, dk, k))
        if ok:
            ratios["backend"].append(ind["backend"] / dk["backend"])
            ratios["first"].append(ind["first"] / dk["first"])
            ratios["kiln"].append(ind["first"] / k["first"])
            cells += [f"{ratios['backend'][-1]:.1f}x", f"{ratios['first'][-1]:.1f}x", f"{ratios['kiln'][-1]:.1f}x"]
        else:
            cells += ["-", "-", "-"]
        stages = dk.get("stages", {})
        cells.append(", ".join(f"{n} {v:.2f}" for n, v in stages.items() if v >= 0.005) or "-")
        warm = [row[m]["warm"] for m in METHODS]
        cells.append(" / ".join(_s(w, "first") for w in warm) + f" ({_s(warm[1], 'backend')})")
        cells.append(", ".join(f"{n} {v:.2f}" for n, v in warm[1].get("stages", {}).items() if v >= 0.005) or "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    geo = lambda xs: statistics.geometric_mean(xs) if xs else float("nan")  # noqa: E731
    lines.append(f"\nGeomeans: back end {geo(ratios['backend']):.1f}x below Inductor's (target 10x); whole first "
                 f"call through torch.compile {geo(ratios['first']):.1f}x (target 5x); kiln.compile's whole first call "
                 f"{geo(ratios['kiln']):.1f}x below torch.compile with Inductor (target 10x).")
    for name, row in rows.items():
        for m in METHODS:
            for when in ("cold", "warm"):
                if "error" in row[m][when]:
                    lines.append(f"\n{name}/{m} ({when}) FAILED: {row[m][when]['error']}")
    return "\n".join(lines)


def main(argv=None):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import models

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(models.MODELS))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "METHOD"))
    parser.add_argument("--kiln-only", action="store_true", help="Kiln's methods only (before/after runs), JSON out")
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    from cpu_bench import machine_line

    log = (lambda s: None) if args.markdown else (lambda s: print(s, file=sys.stderr, flush=True))
    names = args.only or [n for n in models.MODELS if n != "gpt2_tiny"]
    rows = {}
    for name in names:
        log(f"{name}")
        rows[name] = measure(name, log, METHODS[1:] if args.kiln_only else METHODS)
    if args.kiln_only:
        print(json.dumps(rows))
        return
    print(f"bench/cold_compile.py: {machine_line()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
