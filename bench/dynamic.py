"""Dynamic shapes: a (batch, seq) size sweep through torch.compile with Kiln and Inductor (issue 14).

    python bench/dynamic.py                  # 12 sizes, batch 1..64, seq 8..512, 5 rounds
    python bench/dynamic.py --quick          # 5 sizes, batch <= 8, seq <= 64, 2 rounds (minutes: cold Inductor)
    python bench/dynamic.py --only block     # one model (block | gpt2; repeatable)
    python bench/dynamic.py --no-cold --no-generate --markdown   # steady state only; markdown tables

Models (no_grad, eval): `block`, pre-norm attention + GELU MLP, d_model 256, 4 heads; `gpt2`, logits of
GPT2LMHeadModel(n_layer 2, n_head 4, n_embd 128, vocab 1000); `conv`, strided Conv1d stack + pooling on
(batch, 4, 8*seq + 5) (not in the default run: `--only conv`). Methods: eager; kiln = torch.compile(m,
backend="kiln") (automatic dynamic); kiln-dyn = the same, dynamic=True; inductor-dyn = backend="inductor",
dynamic=True (the cold sweep also runs inductor, automatic dynamic as kiln). Compiles: each method cold in a fresh process (empty Kiln and Inductor caches, FX graph
cache off), one pass through the sweep; compile s = sum over sizes of (first call - steady call). Steady
state: methods interleaved round by round per size, each round the median of N calls; ratios (>1 =
faster) are medians of per-round ratios. Static: kiln(-dyn) vs a fresh dynamic=False build called at one
size only. generate(): 32 greedy tokens, prompt 8, model.forward compiled, second call on. TorchDynamo's
recompile limit is raised to 64 so that every compile is counted. No timing assertions.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KILN_STRICT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cpu_bench import _short, machine_line, preimport  # noqa: E402

torch._dynamo.config.recompile_limit, torch._dynamo.config.accumulated_recompile_limit = 64, 1024

SWEEP = [(1, 8), (2, 16), (4, 64), (8, 128), (1, 512), (3, 100), (16, 32), (64, 8), (1, 77), (32, 256),
         (12, 200), (64, 512)]
QUICK_SWEEP = [(1, 8), (2, 16), (4, 64), (3, 40), (8, 24)]
STATIC = {False: [(4, 64), (3, 100), (32, 256)], True: [(2, 16), (8, 24)]}  # dynamic-vs-static sizes
METHODS = ("eager", "kiln", "kiln-dyn", "inductor-dyn")
COLD_METHODS = ("kiln", "kiln-dyn", "inductor", "inductor-dyn")  # inductor: automatic dynamic, as kiln
KINDS = ("generic", "static", "per-size", "split", "eager")


class Block(nn.Module):
    """Pre-norm transformer block: multi-head softmax attention + GELU MLP, residuals."""

    def __init__(self, d=256, heads=4):
        super().__init__()
        self.heads = heads
        self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln2, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, s, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


def tiny_gpt2():
    import transformers as T

    torch.manual_seed(0)
    return T.GPT2LMHeadModel(T.GPT2Config(n_layer=2, n_head=4, n_embd=128, vocab_size=1000, n_positions=1024)).eval()


class Logits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(ids, use_cache=False).logits


class ConvNet(nn.Module):
    """A strided 1-d convolution stack (an audio encoder's shape: output lengths (L - k)//s + 1),
    pooling, and attention-like softmax over time: derived sizes in every layer."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv1d(4, 32, 7, stride=2, padding=3), nn.GELU(),
                                   nn.Conv1d(32, 64, 5, stride=2, padding=2), nn.GELU(),
                                   nn.Conv1d(64, 64, 3, stride=2), nn.GELU(), nn.AvgPool1d(2))

    def forward(self, x):
        y = self.convs(x)
        return y.softmax(-1) * y.shape[-1] + y[..., : y.shape[-1] // 2].mean(-1, keepdim=True)


def build(name):
    torch.manual_seed(0)
    return {"block": Block, "gpt2": lambda: Logits(tiny_gpt2()), "conv": ConvNet}[name]().eval()


def make_input(name, b, s):
    g = torch.Generator().manual_seed(b * 1000 + s)
    if name == "conv":  # (batch, 4 channels, 8*seq + 5 samples): lengths whose pooled length is >= 2
        return torch.randn(b, 4, 8 * s + 5, generator=g)
    return torch.randn(b, s, 256, generator=g) if name == "block" else torch.randint(0, 1000, (b, s), generator=g)


def compile_method(method, module, wrap=None):
    """The module compiled the method's way; `wrap` (children) times the back end."""
    import kiln
    from torch._inductor.compile_fx import compile_fx

    if method == "eager":
        return module
    if method.startswith("inductor"):
        return torch.compile(module, backend=wrap(compile_fx) if wrap else "inductor",
                             dynamic=True if method == "inductor-dyn" else None)
    dynamic = {"kiln": None, "kiln-dyn": True, "kiln-static": False}[method]
    return torch.compile(module, backend=wrap(kiln.compile_fx) if wrap else "kiln", dynamic=dynamic)


def build_kinds(recs):
    """Kiln's records by kind: size-generic builds; static builds (each per-size version and each part
    of a split graph is one); graphs compiled per size; graphs split at a data-dependent op; eager."""
    return {"generic": sum(r.dynamic for r in recs), "per-size": sum(r.per_size for r in recs),
            "static": sum(r.compiled and not (r.dynamic or r.per_size or r.split) for r in recs),
            "split": sum(r.split for r in recs), "eager": sum(not r.compiled for r in recs)}


def median_call(fn, x, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------- cold sweep (child process)

def child(name, method, quick):
    preimport()
    from kiln import records
    from torch._dynamo.utils import counters

    backend = {"calls": 0, "s": 0.0, "depth": 0}

    def wrap(fn):
        def call(*args, **kwargs):  # outermost calls only (compile_fx calls itself)
            backend["depth"], t0 = backend["depth"] + 1, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                backend["depth"] -= 1
                backend["calls"] += not backend["depth"]
                backend["s"] += (time.perf_counter() - t0) * (not backend["depth"])
        return call

    compiled, start = compile_method(method, build(name), wrap), len(records.RECORDS)
    first_pass = compile_s = 0.0
    with torch.no_grad():
        for b, s in (QUICK_SWEEP if quick else SWEEP):
            x = make_input(name, b, s)
            t0 = time.perf_counter()
            compiled(x)
            first = time.perf_counter() - t0
            first_pass += first
            compile_s += max(0.0, first - median_call(compiled, x, 3))
    result = {"graphs": counters["stats"]["unique_graphs"], "calls": backend["calls"], "backend_s": backend["s"],
              "compile_s": compile_s, "first_pass_s": first_pass,
              "kinds": build_kinds(records.RECORDS[start:]) if method.startswith("kiln") else None}
    print("BENCH_JSON " + json.dumps(result), flush=True)


def run_child(name, method, quick, timeout=1800):
    """One cold sweep in a fresh process; its Kiln kernels are then copied into this process's cache."""
    from kiln import config

    with tempfile.TemporaryDirectory() as kc, tempfile.TemporaryDirectory() as ic:
        env = {**os.environ, "KILN_CACHE_DIR": kc, "TORCHINDUCTOR_CACHE_DIR": ic, "TORCHINDUCTOR_FX_GRAPH_CACHE": "0"}
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name, method] + (["--quick"] if quick else [])
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"failed": f"timed out after {timeout} s"}
        shutil.copytree(kc, config.cache_dir, dirs_exist_ok=True)  # content-addressed: warm steady-state compiles
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"failed": f"child exited {proc.returncode}: {tail[0][:200]}"}


# ---------------------------------------------------------------- steady state (this process)

def interleaved(fns, x, rounds, budget):
    """{method: [seconds per round]}, each round the median of N calls of every method in turn."""
    calls = max(1, min(20, int(budget / max(median_call(fns["eager"], x, 1), 1e-6))))
    samples = {m: [] for m in fns}
    for _ in range(rounds):
        for m, fn in fns.items():
            samples[m].append(median_call(fn, x, calls))
    return samples


def warm(fns, x, log, label):
    """The methods that ran x twice (compiling at its size), and their max abs error vs eager."""
    ref, ok, err = fns["eager"](x), {}, {}
    for m, fn in fns.items():
        try:
            err[m] = f"{(fn(x) - ref).abs().max().item():.1e}"
            fn(x)
            ok[m] = fn
        except Exception as e:  # noqa: BLE001  (a failing method is a result)
            err[m] = "FAILED"
            log(f"  {label} {m}: FAILED: {_short(e, 300)}")
    return ok, err


def steady(name, quick, rounds, log):
    module = build(name)
    fns = {m: compile_method(m, module) for m in METHODS}
    rows, static_rows, budget = [], [], 0.05 if quick else 0.25
    with torch.no_grad():
        for size in (QUICK_SWEEP if quick else SWEEP):
            x = make_input(name, *size)
            ok, err = warm(fns, x, log, f"{name} {size}")
            rows.append({"size": size, "samples": interleaved(ok, x, rounds, budget), "err": err})
            log(f"  {name} {size}: " + ", ".join(f"{m} {ms(rows[-1]['samples'], m)} ms" for m in ok))
        for size in STATIC[quick]:
            x = make_input(name, *size)
            kilns = {m: fns[m] for m in METHODS[:3]} | {"kiln-static": compile_method("kiln-static", module)}
            ok, err = warm(kilns, x, log, f"{name} {size} static")
            static_rows.append({"size": size, "samples": interleaved(ok, x, rounds, budget), "err": err})
    return rows, static_rows


def generate(rounds, log):
    """Greedy generate() of 32 tokens: eager vs a compiled model.forward (kiln, inductor)."""
    from kiln import records
    from torch._dynamo.utils import counters

    base = tiny_gpt2()
    prompt = torch.randint(0, 1000, (1, 8), generator=torch.Generator().manual_seed(0))
    kw = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
    out, models = {}, {}
    with torch.no_grad():
        for m in ("eager", "kiln", "inductor"):
            models[m] = model = copy.deepcopy(base)
            if m != "eager":
                model.forward = torch.compile(model.forward, backend=m)
            start, graphs = len(records.RECORDS), counters["stats"]["unique_graphs"]
            t0 = time.perf_counter()
            tokens = model.generate(prompt, **kw)
            first = time.perf_counter() - t0
            model.generate(prompt, **kw)
            out[m] = {"first": first, "tokens": tokens, "graphs": counters["stats"]["unique_graphs"] - graphs,
                      "kinds": build_kinds(records.RECORDS[start:]) if m == "kiln" else None}
            log(f"  generate {m}: first call {first:.2f} s")
        fns = {m: (lambda p, model=model: model.generate(p, **kw)) for m, model in models.items()}
        return out, interleaved(fns, prompt, rounds, 0)


# ---------------------------------------------------------------- tables

def render(head, rows, markdown):
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows])


def ratio(samples, m, base):
    if m == base or m not in samples or base not in samples:
        return "-"
    return f"{statistics.median(b / t for b, t in zip(samples[base], samples[m])):.2f}x"


def ms(samples, m):
    return f"{statistics.median(samples[m]) * 1e3:.2f}" if m in samples else "FAILED"


def kinds(k):
    return "/".join(str(k[x]) for x in KINDS) if k else "-"


def cold_table(cold, md):
    head = ["model", "method", "dynamo graphs", "back-end calls", "kiln builds " + "/".join(KINDS), "back end s",
            "compile s", "first pass s"]
    rows = [[name, m, "FAILED: " + r["failed"], *["-"] * 5] if "failed" in r else
            [name, m, str(r["graphs"]), str(r["calls"]), kinds(r["kinds"]), f"{r['backend_s']:.2f}",
             f"{r['compile_s']:.2f}", f"{r['first_pass_s']:.2f}"] for (name, m), r in cold.items()]
    return render(head, rows, md)


def size_table(name, rows, methods, pairs, md):
    """Per size: ms of each method, ratios (m vs base) and max abs error vs eager."""
    head = ["model", "batch x seq", *(f"{m} ms" for m in methods), *(f"{m} vs {b}" for m, b in pairs),
            "max err " + "/".join(methods[1:])]
    out = [[name, "%dx%d" % r["size"], *(ms(r["samples"], m) for m in methods),
            *(ratio(r["samples"], m, b) for m, b in pairs), "/".join(r["err"].get(m, "-") for m in methods[1:])]
           for r in rows]
    return render(head, out, md)


def generate_table(out, samples, md):
    head = ["method", "first generate s", "steady ms", "vs eager", "vs inductor", "dynamo graphs",
            "kiln builds " + "/".join(KINDS), "tokens = eager's"]
    rows = [[m, f"{r['first']:.2f}", ms(samples, m), ratio(samples, m, "eager"), ratio(samples, m, "inductor"),
             str(r["graphs"]), kinds(r["kinds"]), str(torch.equal(r["tokens"], out["eager"]["tokens"]))]
            for m, r in out.items()]
    return render(head, rows, md)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 small sizes, 2 rounds")
    parser.add_argument("--only", action="append", choices=["block", "gpt2", "conv"])
    parser.add_argument("--rounds", type=int, help="interleaved rounds per size (default 2 quick, 5 full)")
    parser.add_argument("--markdown", action="store_true", help="markdown tables, no progress lines")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-compile child processes")
    parser.add_argument("--no-generate", action="store_true", help="skip the generate() comparison")
    parser.add_argument("--no-steady", action="store_true", help="skip the steady-state tables")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, args.quick)
    preimport()
    rounds = args.rounds or (2 if args.quick else 5)
    log = (lambda s: None) if args.markdown else (lambda s: print(s, file=sys.stderr, flush=True))
    names, cold, results = args.only or ["block", "gpt2"], {}, {}
    for name in [] if args.no_cold else names:
        for m in COLD_METHODS:
            cold[name, m] = run_child(name, m, args.quick)
            log(f"cold {name}/{m}: {cold[name, m]}")
    for name in [] if args.no_steady else names:
        log(f"steady state: {name}")
        results[name] = steady(name, args.quick, rounds, log)
    gen = None if args.no_generate else generate(rounds, log)
    sizes = ", ".join("%dx%d" % size for size in (QUICK_SWEEP if args.quick else SWEEP))
    print(f"bench/dynamic.py ({'quick' if args.quick else 'full'}, {rounds} rounds, sizes {sizes}): "
          f"{machine_line()}\n")
    if cold:
        print("Compiles over the sweep, each method cold in a fresh process:\n" + cold_table(cold, args.markdown)
              + "\n")
    pairs = [(m, b) for m in ("kiln", "kiln-dyn") for b in ("eager", "inductor-dyn")]
    for name, (rows, static_rows) in results.items():
        print(f"Steady state, {name} (ratios >1 = faster):\n" + size_table(name, rows, METHODS, pairs, args.markdown))
        print(f"\nSymbolic-size vs static Kiln builds, {name} (vs kiln-static: 1.00x = as fast):\n"
              + size_table(name, static_rows, ("eager", "kiln", "kiln-dyn", "kiln-static"),
                           [("kiln", "kiln-static"), ("kiln-dyn", "kiln-static")], args.markdown) + "\n")
    if gen:
        print("generate(), tiny GPT-2, prompt 8, batch 1, 32 new tokens, greedy:\n"
              + generate_table(*gen, args.markdown))


if __name__ == "__main__":
    main()
