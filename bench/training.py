"""Training benchmark: eager vs torch.compile (inductor) vs Kiln on three training steps.

Usage (from the repository root, in the virtualenv):

    python bench/training.py                     # full run: steady state, saved bytes, cold/warm compile times
    python bench/training.py --quick             # smoke test: small sizes, 2 rounds, no compile subprocesses
    python bench/training.py --only gpt2_tiny    # one workload (repeatable)
    python bench/training.py --markdown          # markdown only, for bench/RESULTS.md
    python bench/training.py --compile-only NAME --backend kiln|dynamo-kiln|inductor   # (internal)

What is measured
  * One training step = forward + loss + backward + AdamW step + zero_grad, on a module compiled
    the way users do it: the module is compiled, loss.backward() and the optimizer run as usual.
      eager        the plain module
      inductor     torch.compile(module)                      (TorchDynamo + AOTAutograd + TorchInductor)
      kiln         kiln.compile(module)                       (Kiln capture + Kiln back end)
      dynamo+kiln  torch.compile(module, backend="kiln")
    Every method starts from the same weights and sees the same batch. KILN_STRICT=1: a graph Kiln
    runs eagerly raises, and the row prints FAILED with the reason, so a fallback never passes for
    Kiln's speed.
  * Steady state: all methods in one process, timed interleaved round by round (eager, inductor,
    kiln, dynamo+kiln, eager, ...); each round is the median of N steps; ratios are medians of the
    per-round ratios (the machine is noisy; see bench/RESULTS.md).
  * Accuracy: after one step from identical weights, the loss difference from eager and the largest
    parameter difference from eager's.
  * Saved activations: bytes of the tensors each method's forward keeps for its backward, measured
    with torch.autograd.graph.saved_tensors_hooks around one forward (kiln/training_stats.py: each
    storage once, weights included); for Kiln also the sum of `saved_bytes` of the partitions Kiln
    made (prims/partition.py, collected from the `kiln.partition` logger), and what save_all would keep.
  * Compile time: the first training step (compile of forward and backward + one step) in a fresh
    subprocess, cold (empty KILN_CACHE_DIR / TORCHINDUCTOR_CACHE_DIR) and warm (a second process on
    the same cache dirs), imports excluded.

No timing assertions live here or in the tests.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KILN_STRICT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cpu_bench import _short, fmt_ms, fmt_x, geomean, machine_line, preimport  # noqa: E402
from kiln.training_stats import eager_saved_bytes  # noqa: E402

METHODS = ["eager", "inductor", "kiln", "dynamo+kiln"]


# --------------------------------------------------------------------------------------------
# Workloads: (module, batch, loss(module, *batch))
# --------------------------------------------------------------------------------------------


class MLPBlock(nn.Module):
    """Pre-norm GELU MLP with a residual: x + fc2(gelu(fc1(ln(x))))."""

    def __init__(self, d, hidden):
        super().__init__()
        self.ln, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.ln(x))))


class Block(nn.Module):
    """Pre-norm transformer block: causal-free multi-head attention + GELU MLP, LayerNorms, residuals."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = MLPBlock(d, 4 * d)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, s, d))
        return self.mlp(x)


def mse_loss(module, x, y):
    return F.mse_loss(module(x), y)


def make_mlp(quick):
    batch, d = (64, 128) if quick else (512, 512)
    g = torch.Generator().manual_seed(0)
    return MLPBlock(d, 4 * d), (torch.randn(batch, d, generator=g), torch.randn(batch, d, generator=g)), mse_loss


def make_block(quick):
    batch, seq, d, heads = (2, 32, 64, 4) if quick else (8, 128, 256, 8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, seq, d, generator=g)
    return Block(d, heads), (x, torch.randn(batch, seq, d, generator=g)), mse_loss


def gpt2_loss(module, ids):
    return module(ids, labels=ids).loss


def make_gpt2(quick):
    import transformers

    layers, d, seq, batch = (2, 64, 32, 2) if quick else (4, 128, 128, 4)
    config = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=4, n_positions=seq, vocab_size=512,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # eager-comparable losses
                                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    ids = torch.randint(0, 512, (batch, seq), generator=torch.Generator().manual_seed(0))
    return transformers.GPT2LMHeadModel(config).train(), (ids,), gpt2_loss


WORKLOADS = {
    "gelu_mlp": (make_mlp, "pre-norm GELU MLP block + residual, MSE loss, batch 512, d 512 -> 2048 -> 512"),
    "transformer_block": (make_block, "pre-norm attention (8 heads) + GELU MLP block, batch 8, seq 128, d 256"),
    "gpt2_tiny": (make_gpt2, "GPT2LMHeadModel from a transformers config: 4 layers, d 128, seq 128, batch 4, "
                             "vocab 512, dropout 0"),
}


# --------------------------------------------------------------------------------------------
# Methods, steps, measurements
# --------------------------------------------------------------------------------------------


def compile_module(method, module):
    if method == "eager":
        return module
    if method == "inductor":
        return torch.compile(module)
    if method == "kiln":
        from kiln import capture

        return capture.compile(module)
    if method == "dynamo+kiln":
        return torch.compile(module, backend="kiln")
    raise ValueError(method)


class Runner:
    """One method's copy of the module, its compiled form and its AdamW."""

    def __init__(self, method, module, batch, loss_fn):
        torch.manual_seed(0)
        self.module = copy.deepcopy(module)
        self.compiled = compile_module(method, self.module)
        self.opt = torch.optim.AdamW(self.module.parameters(), lr=1e-3)
        self.batch, self.loss_fn = batch, loss_fn

    def step(self):
        loss = self.loss_fn(self.compiled, *self.batch)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()


class PartitionCollector(logging.Handler):
    """Collects the Partition objects Kiln logs on `kiln.partition` (prims/partition.py)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.partitions = []
        logger = logging.getLogger("kiln.partition")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(self)

    def emit(self, record):
        if record.args:
            self.partitions.append(record.args[0])


def first_step(runner):
    """The first step, turning any Kiln fallback warning into an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        loss = runner.step()
        elapsed = time.perf_counter() - t0
    for w in caught:
        if type(w.message).__name__ in ("KilnCompileWarning", "FallbackWarning"):
            raise RuntimeError(f"Kiln fell back to eager: {w.message}")
    return loss, elapsed


def time_steps(runner, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        runner.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_workload(name, quick, rounds, log, collector):
    module, batch, loss_fn = WORKLOADS[name][0](quick)
    row = {"name": name, "times": {}, "failed": {}, "loss_err": {}, "param_err": {}, "first_step": {},
           "saved": {}, "partitions": {}}
    runners = {}
    reference = None
    for method in METHODS:
        try:
            collector.partitions.clear()
            runner = Runner(method, module, batch, loss_fn)
            loss, elapsed = first_step(runner)
            params = [p.detach().clone() for p in runner.module.parameters()]
            if method == "eager":
                reference = (loss, params)
            else:
                row["loss_err"][method] = (loss - reference[0]).abs().item()
                row["param_err"][method] = max((a - b).abs().max().item() for a, b in zip(params, reference[1]))
            if collector.partitions:
                parts = list(collector.partitions)
                row["partitions"][method] = (sum(p.saved_bytes for p in parts), sum(p.save_all_bytes for p in parts),
                                             len(parts), sum(p.seconds for p in parts))
            runner.step()  # warm-up
            row["first_step"][method] = elapsed
            runners[method] = runner
        except Exception as e:  # noqa: BLE001  (a failing method is a result, not a crash)
            row["failed"][method] = _short(e, 100).replace("BackendCompilerFailed: backend='kiln' raised: ", "")
            log(f"  {name}/{method}: FAILED: {_short(e, 400)}")
    probe = time_steps(runners["eager"], 1)
    steps = max(1, min(20, int((0.05 if quick else 0.3) / max(probe, 1e-6))))
    samples = {m: [] for m in runners}
    for _ in range(rounds):
        for m, r in runners.items():
            samples[m].append(time_steps(r, steps))
    row["times"] = {m: statistics.median(s) for m, s in samples.items()}
    row["ratios"] = {(m, base): statistics.median(b / k for b, k in zip(samples[base], samples[m]))
                     for m in ("kiln", "dynamo+kiln") if m in samples
                     for base in ("eager", "inductor") if base in samples}
    row["spread"] = {m: max(s) / min(s) for m, s in samples.items()}
    row["steps"] = steps
    for m, r in runners.items():
        try:
            row["saved"][m] = eager_saved_bytes(lambda r=r: r.loss_fn(r.compiled, *r.batch))
        except Exception as e:  # noqa: BLE001
            log(f"  {name}/{m}: saved-bytes measurement failed: {_short(e)}")
    return row


def steady_table(rows):
    head = ["workload", "eager ms", "inductor ms", "kiln ms", "dynamo+kiln ms", "kiln vs eager", "kiln vs inductor",
            "dynamo+kiln vs eager", "dynamo+kiln vs inductor", "loss err inductor / kiln / dynamo+kiln",
            "param err after 1 step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 3) + ["---", "---"]) + "|"]
    for r in rows:
        def cell(m):
            return f"FAILED: {r['failed'][m]}" if m in r["failed"] else fmt_ms(r["times"].get(m))

        def err(key):
            return " / ".join(f"{r[key][m]:.1e}" if m in r[key] else "—" for m in METHODS[1:])

        lines.append("| " + " | ".join([r["name"], *(cell(m) for m in METHODS),
                                         *(fmt_x(r["ratios"].get(k)) for k in [("kiln", "eager"), ("kiln", "inductor"),
                                                                               ("dynamo+kiln", "eager"),
                                                                               ("dynamo+kiln", "inductor")]),
                                         err("loss_err"), err("param_err")]) + " |")
    for method in ("kiln", "dynamo+kiln"):
        for base in ("eager", "inductor"):
            g = geomean([r["ratios"].get((method, base)) for r in rows])
            lines.append(f"\nGeomean {method} speed vs {base}: **{fmt_x(g)}x** (>1 = faster)")
    lines.append("\nSteps per round: " + ", ".join(f"{r['name']} {r['steps']}" for r in rows)
                 + "; round-to-round spread (slowest/fastest): " + "; ".join(
                     f"{r['name']} " + "/".join(f"{r['spread'][m]:.2f}" for m in METHODS if m in r["spread"])
                     for r in rows))
    return "\n".join(lines)


def saved_table(rows):
    head = ["workload", "eager", "inductor", "kiln", "dynamo+kiln", "Kiln partitions: min-cut / save_all (graphs, ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 2) + ["---"]) + "|"]
    for r in rows:
        cells = [r["name"]] + [f"{r['saved'][m] / 1e6:.3f} MB" if m in r["saved"] else "—" for m in METHODS]
        parts = [f"{m}: {s / 1e6:.3f} / {a / 1e6:.3f} MB ({n}, {t * 1e3:.0f} ms)"
                 for m, (s, a, n, t) in r["partitions"].items()]
        lines.append("| " + " | ".join(cells + ["; ".join(parts) or "—"]) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Compile time (fresh subprocesses)
# --------------------------------------------------------------------------------------------


def compile_only(name, backend, quick):
    t0 = time.perf_counter()
    preimport()
    result = {"import_s": time.perf_counter() - t0}
    module, batch, loss_fn = WORKLOADS[name][0](quick)
    method = {"kiln": "kiln", "inductor": "inductor", "dynamo-kiln": "dynamo+kiln"}[backend]
    try:
        runner = Runner(method, module, batch, loss_fn)
        _, first = first_step(runner)
        result.update(first_step_s=first, steady_s=time_steps(runner, 3))
    except Exception as e:  # noqa: BLE001
        result["failed"] = _short(e)
    print("BENCH_JSON " + json.dumps(result), flush=True)


def run_child(name, backend, quick, env, timeout=900):
    cmd = [sys.executable, os.path.abspath(__file__), "--compile-only", name, "--backend", backend]
    cmd += ["--quick"] if quick else []
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"failed": f"child exited {proc.returncode}: {tail[0][:160]}"}


def compile_table(names, quick, log):
    backends = ["inductor", "kiln", "dynamo-kiln"]
    head = ["workload"] + [f"{b} {phase} s" for b in backends for phase in ("cold", "warm")] + \
        ["kiln cold speed vs inductor cold", "dynamo-kiln cold speed vs inductor cold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    ratios = []
    with tempfile.TemporaryDirectory(prefix="kiln-train-bench-") as root:
        for name in names:
            cells, first = [name], {}
            for backend in backends:
                cache = os.path.join(root, f"{name}-{backend}")
                env = dict(os.environ, KILN_CACHE_DIR=os.path.join(cache, "kiln"),
                           TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"))
                for phase in ("cold", "warm"):
                    r = run_child(name, backend, quick, env)
                    log(f"  compile {name}/{backend}/{phase}: " + (f"FAILED: {r['failed']}" if "failed" in r
                                                                   else f"{r['first_step_s']:.2f} s"))
                    if "failed" in r:
                        cells.append(f"FAILED: {r['failed']}")
                    else:
                        first[(backend, phase)] = r["first_step_s"]
                        cells.append(f"{r['first_step_s']:.2f}")
            row = [first[("inductor", "cold")] / first[(b, "cold")]
                   if ("inductor", "cold") in first and (b, "cold") in first else None for b in ("kiln", "dynamo-kiln")]
            ratios.append(row)
            lines.append("| " + " | ".join(cells + [fmt_x(r) for r in row]) + " |")
    lines.append(f"\nGeomean cold-compile speed-up over inductor: kiln **{fmt_x(geomean([r[0] for r in ratios]))}x**, "
                 f"dynamo-kiln **{fmt_x(geomean([r[1] for r in ratios]))}x** "
                 "(first training step in a fresh process: compile of forward and backward + one step; "
                 "imports excluded).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, 2 rounds, no compile subprocesses")
    p.add_argument("--only", action="append", choices=list(WORKLOADS))
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 2)")
    p.add_argument("--markdown", action="store_true", help="print only the markdown report")
    p.add_argument("--no-compile-times", action="store_true")
    p.add_argument("--no-steady", action="store_true", help="only the compile-time subprocesses")
    p.add_argument("--compile-times", action="store_true", help="run the compile subprocesses even with --quick")
    p.add_argument("--compile-only", metavar="NAME", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    p.add_argument("--backend", choices=["kiln", "dynamo-kiln", "inductor"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.compile_only:
        compile_only(a.compile_only, a.backend or "kiln", a.quick)
        return 0
    names = a.only or list(WORKLOADS)
    rounds = a.rounds or (2 if a.quick else 5)

    def log(msg):
        if not a.markdown:
            print(msg, file=sys.stderr, flush=True)

    collector = PartitionCollector()
    report = [f"## Kiln training benchmark{' (--quick sizes)' if a.quick else ''}", "",
              f"Machine: {machine_line()}", "",
              "Workloads (training step = forward + loss + backward + AdamW step):"]
    report += [f"- `{n}`: {WORKLOADS[n][1]}" + (" (smaller with --quick)" if a.quick else "") for n in names]
    rows = []
    for name in [] if a.no_steady else names:
        log(f"steady state: {name} ...")
        rows.append(bench_workload(name, a.quick, rounds, log, collector))
    report += [] if a.no_steady else ["", "### Steady state (ms per training step, median)", "", steady_table(rows), "",
               "### Saved activations (bytes the forward keeps for the backward)", "", saved_table(rows), "",
               "In-process first steps (s, caches possibly warm): " + "; ".join(
                   f"{r['name']}: " + ", ".join(f"{m} {t:.2f}" for m, t in r["first_step"].items()) for r in rows), ""]
    if (a.compile_times or not a.quick) and not a.no_compile_times:
        log("compile times (fresh subprocesses) ...")
        report += ["### Compile time (first training step, fresh process)", "", compile_table(names, a.quick, log), ""]
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
