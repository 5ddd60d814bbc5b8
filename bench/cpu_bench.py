"""CPU benchmark: eager vs torch.compile (inductor) vs Kiln on six inference workloads.

Usage (from the repository root, in the virtualenv):

    python bench/cpu_bench.py                    # full run: steady-state tables + cold/warm compile times
    python bench/cpu_bench.py --quick            # smoke test: small sizes, 2 rounds, no compile-time
                                                 # subprocesses (about 20 s); add --compile-times for them
    python bench/cpu_bench.py --only softmax     # one workload (repeat --only for several)
    python bench/cpu_bench.py --no-compile-times # steady state only
    python bench/cpu_bench.py --markdown         # markdown only (no progress lines), for pasting
    python bench/cpu_bench.py --rounds 7         # rounds of the interleaved steady-state loop
    python bench/cpu_bench.py --threads 1        # pin every method (eager, inductor, Kiln) to 1 thread
    python bench/cpu_bench.py --compile-only NAME --backend kiln|dynamo-kiln|inductor
                                                 # (internal) first-call time of one workload, as JSON

What is measured
  * Steady state, all in one process, under torch.no_grad(). For each workload every method is
    compiled and warmed up, then the methods are timed interleaved, round by round
    (roofline, eager, inductor, kiln, dynamo+kiln, roofline, eager, ...); each round takes the
    median of several calls; the table shows the median over rounds.
      eager        the plain Python function
      inductor     torch.compile(fn)                        (TorchDynamo + TorchInductor)
      kiln         capture.compile(fn, fullgraph=True)      (Kiln capture + Kiln back end)
      dynamo+kiln  torch.compile(fn, backend="kiln", fullgraph=True)
    Kiln runs with KILN_STRICT=1 and fullgraph=True, so a graph Kiln cannot capture or compile
    raises instead of silently running eagerly; such a row prints "FAILED: reason".
  * Memory roofline: `dst.copy_(src)` moving the same number of bytes the workload must move at
    minimum (every input read once + every output written once). Each time is also shown as a
    multiple of that copy time ("x roof"; 1.0 = as fast as a memcpy of the compulsory traffic).
    Matmul-heavy workloads are compute-bound, so their multiple is expected to be large.
  * Accuracy: max abs difference from eager over all outputs.
  * Compile time: the first call (capture + compile + the call itself) in a fresh subprocess,
    cold (empty KILN_CACHE_DIR / fresh TORCHINDUCTOR_CACHE_DIR temp dir) and warm (a second fresh
    process reusing that cache dir). Process start-up and imports are not included.

Noise: the reference machine is a 2-vCPU VM whose speed drifts by up to 2x for seconds at a time
(the same command can report twice the time). Interleaving keeps each round's methods under the
same conditions, the speed ratios are medians of per-round ratios, and the report prints each
method's round-to-round spread; trust ratios more than absolute milliseconds.

No timing assertions live here or anywhere in the tests: speed is for benchmarks only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

os.environ.setdefault("KILN_STRICT", "1")  # a Kiln failure raises (reported as FAILED), never hides as eager
if "--threads" in sys.argv[:-1]:  # must be set before torch (and any OpenMP runtime) loads
    os.environ["OMP_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

# Import this checkout's packages, not whichever one the virtualenv's editable install points at
# (`python bench/x.py` puts bench/ first on sys.path, not the repository root).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# --------------------------------------------------------------------------------------------
# Workloads: straight-line functions of their weights (what Kiln's capture supports today).
# --------------------------------------------------------------------------------------------


def pointwise(x, y):
    return (x.sin() * 2.0 + y).relu() * y.tanh() + x * 0.5


def softmax(x):
    return torch.softmax(x, dim=-1)


def layer_norm(x, g, b):
    return F.layer_norm(x, (x.shape[-1],), g, b)


def mlp(x, w1, b1, w2, b2, g, b):
    h = F.gelu(x @ w1 + b1)
    return F.layer_norm(h @ w2 + b2 + x, (x.shape[-1],), g, b)


def transformer_block(x, wq, bq, wk, bk, wv, bv, wo, bo, g1, b1, w1, c1, w2, c2, g2, b2):
    # Post-norm encoder block; the head count (8) is fixed, the head size follows from d.
    B, S, D = x.shape
    H = 8
    q = (x @ wq + bq).view(B, S, H, D // H).transpose(1, 2)
    k = (x @ wk + bk).view(B, S, H, D // H).transpose(1, 2)
    v = (x @ wv + bv).view(B, S, H, D // H).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H))
    attn = torch.softmax(scores, dim=-1)
    o = (attn @ v).transpose(1, 2).reshape(B, S, D)
    x = F.layer_norm(x + o @ wo + bo, (D,), g1, b1)
    h = F.gelu(x @ w1 + c1)
    return F.layer_norm(x + h @ w2 + c2, (D,), g2, b2)


def reductions(x):
    return x.sum(dim=-1), x.var(dim=-1), x.amax(dim=-1)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_pointwise(quick):
    n = 1 << (20 if quick else 24)  # 1M / 16M floats
    g = _gen()
    return torch.randn(n, generator=g), torch.randn(n, generator=g)


def make_softmax(quick):
    n = 512 if quick else 4096
    return (torch.randn(n, n, generator=_gen()),)


def make_layer_norm(quick):
    rows, d = (1024, 1024) if quick else (8192, 1024)
    g = _gen()
    return torch.randn(rows, d, generator=g), torch.randn(d, generator=g) * 0.1 + 1, torch.randn(d, generator=g) * 0.1


def make_mlp(quick):
    batch, d, hidden = (32, 256, 1024) if quick else (256, 1024, 4096)
    g = _gen()
    return (torch.randn(batch, d, generator=g),
            torch.randn(d, hidden, generator=g) / d ** 0.5, torch.randn(hidden, generator=g) * 0.1,
            torch.randn(hidden, d, generator=g) / hidden ** 0.5, torch.randn(d, generator=g) * 0.1,
            torch.randn(d, generator=g) * 0.1 + 1, torch.randn(d, generator=g) * 0.1)


def make_transformer_block(quick):
    batch, seq, d = (2, 64, 128) if quick else (4, 256, 512)
    g = _gen()

    def lin(i, o):
        return torch.randn(i, o, generator=g) / i ** 0.5, torch.randn(o, generator=g) * 0.02

    def norm():
        return torch.randn(d, generator=g) * 0.1 + 1, torch.randn(d, generator=g) * 0.1

    x = torch.randn(batch, seq, d, generator=g)
    return (x, *lin(d, d), *lin(d, d), *lin(d, d), *lin(d, d), *norm(), *lin(d, 4 * d), *lin(4 * d, d), *norm())


def make_reductions(quick):
    n = 512 if quick else 4096
    return (torch.randn(n, n, generator=_gen()),)


WORKLOADS = {  # name -> (function, make_inputs(quick), description (full size))
    "pointwise": (pointwise, make_pointwise, "(sin(x)*2+y).relu()*tanh(y)+x*0.5, 16M floats"),
    "softmax": (softmax, make_softmax, "row softmax 4096x4096"),
    "layer_norm": (layer_norm, make_layer_norm, "layer_norm 8192x1024"),
    "mlp": (mlp, make_mlp, "GELU MLP + residual + layer_norm, 256x1024->4096->1024"),
    "transformer_block": (transformer_block, make_transformer_block,
                          "encoder block, batch 4, seq 256, d 512, 8 heads, MLP 4x"),
    "reductions": (reductions, make_reductions, "sum/var/amax over rows of 4096x4096"),
}

METHODS = ["eager", "inductor", "kiln", "dynamo+kiln"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    raise TypeError(f"unexpected output type {type(out).__name__}")


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _short(e: BaseException, limit=160) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ").replace("|", "/")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _import_capture():
    from kiln import capture

    return capture


def make_compiled(method, fn):
    """A callable for `method`; compilation itself happens on the first call."""
    if method == "eager":
        return fn
    if method == "inductor":
        return torch.compile(fn)
    if method == "kiln":
        return _import_capture().compile(fn, fullgraph=True)
    if method == "dynamo+kiln":
        return torch.compile(fn, backend="kiln", fullgraph=True)
    raise ValueError(method)


def first_call(compiled, args):
    """Run the first call, turning any Kiln fallback warning into an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        out = compiled(*args)
        elapsed = time.perf_counter() - t0
    for w in caught:
        name = type(w.message).__name__
        if name in ("KilnCompileWarning", "FallbackWarning"):
            raise RuntimeError(f"Kiln fell back to eager: {w.message}")
    return out, elapsed


def time_calls(fn, args, calls):
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def fmt_ms(t):
    return "—" if t is None else (f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.0f}")


def fmt_x(r):
    return "—" if r is None else f"{r:.2f}"


# --------------------------------------------------------------------------------------------
# Steady state
# --------------------------------------------------------------------------------------------


def bench_workload(name, quick, rounds, log):
    fn, make, _ = WORKLOADS[name]
    args = make(quick)
    row = {"name": name, "times": {}, "errors": {}, "failed": {}, "first_call": {}}
    with torch.no_grad():
        expected = _flat(fn(*args))
        traffic = _nbytes(args) + _nbytes(expected)
        row["traffic_bytes"] = traffic
        half = traffic // 2 // 4  # copy_ of traffic/2 bytes reads traffic/2 and writes traffic/2
        src, dst = torch.randn(half), torch.empty(half)
        runners = {"roofline": (lambda: dst.copy_(src), ())}
        for method in METHODS:
            try:
                compiled = make_compiled(method, fn)
                out, elapsed = first_call(compiled, args)
                got = _flat(out)
                if len(got) != len(expected):
                    raise RuntimeError(f"{len(got)} outputs, eager has {len(expected)}")
                err = 0.0
                for g_, e_ in zip(got, expected):
                    if g_.shape != e_.shape:
                        raise RuntimeError(f"output shape {tuple(g_.shape)} != eager {tuple(e_.shape)}")
                    err = max(err, (g_.double() - e_.double()).abs().max().item())
                compiled(*args)  # warm-up (second call: guards, allocations)
                row["errors"][method] = err
                row["first_call"][method] = elapsed
                runners[method] = (compiled, args)
            except Exception as e:  # noqa: BLE001  (a failing backend is a result, not a crash)
                row["failed"][method] = _short(e)
                log(f"  {name}/{method}: FAILED: {_short(e, 400)}")
                if os.environ.get("BENCH_TRACEBACK"):
                    traceback.print_exc()
        # Calls per round: aim for ~0.25 s per method per round (at least 1, at most 50 calls).
        probe_fn, probe_args = runners["eager"] if "eager" in runners else runners["roofline"]
        t_probe = max(time_calls(probe_fn, probe_args, 1), 1e-6)
        calls = max(1, min(50, int((0.05 if quick else 0.2) / t_probe)))
        samples = {m: [] for m in runners}
        for _ in range(rounds):
            for m, (f, a) in runners.items():
                samples[m].append(time_calls(f, a, calls))
        for m, s in samples.items():
            row["times"][m] = statistics.median(s)
        # Speed ratios: the median over rounds of the per-round ratio. Methods run back to back within
        # a round, so a slow spell of the (noisy, shared) VM hits both sides of a ratio alike.
        row["ratios"] = {}
        for base in ("inductor", "eager"):
            if base in samples and "kiln" in samples:
                row["ratios"][base] = statistics.median(b / k for b, k in zip(samples[base], samples["kiln"]))
        row["spread"] = {m: max(s) / min(s) for m, s in samples.items()}
        row["calls_per_round"] = calls
    return row


def steady_table(rows, rounds):
    lines = []
    head = ["workload", "MB moved", "roofline ms", "eager ms", "inductor ms", "kiln ms", "dynamo+kiln ms",
            "kiln speed vs inductor", "kiln speed vs eager", "eager x roof", "inductor x roof", "kiln x roof",
            "max abs err inductor / kiln / dynamo+kiln"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 2) + ["---"]) + "|")
    ratios_ind, ratios_eager = [], []
    for r in rows:
        t = r["times"]
        roof = t.get("roofline")

        def cell(m):
            return f"FAILED: {r['failed'][m]}" if m in r["failed"] else fmt_ms(t.get(m))

        def rel(m):
            return fmt_x(t[m] / roof) if m in t and roof else "—"

        k_vs_i, k_vs_e = r["ratios"].get("inductor"), r["ratios"].get("eager")
        ratios_ind.append(k_vs_i)
        ratios_eager.append(k_vs_e)
        errs = " / ".join(f"{r['errors'][m]:.1e}" if m in r["errors"] else "FAILED"
                          for m in ("inductor", "kiln", "dynamo+kiln"))
        lines.append("| " + " | ".join([r["name"], f"{r['traffic_bytes'] / 1e6:.1f}", fmt_ms(roof), cell("eager"),
                                         cell("inductor"), cell("kiln"), cell("dynamo+kiln"), fmt_x(k_vs_i),
                                         fmt_x(k_vs_e), rel("eager"), rel("inductor"), rel("kiln"), errs]) + " |")
    gi, ge = geomean(ratios_ind), geomean(ratios_eager)
    n_ok = sum(x is not None for x in ratios_ind)
    lines.append("")
    lines.append(f"Geomean over {n_ok} workload(s) where both ran: Kiln speed vs inductor **{fmt_x(gi)}x**, "
                 f"Kiln speed vs eager **{fmt_x(ge)}x** (>1 = Kiln faster; each ratio is the median over rounds "
                 "of the per-round time ratio, so it can differ slightly from the ratio of the median times).")
    lines.append("Round-to-round spread (slowest / fastest round): " + "; ".join(
        f"{r['name']} " + "/".join(f"{r['spread'][m]:.2f}" for m in ["roofline"] + METHODS if m in r["spread"])
        for r in rows) + " (roofline/eager/inductor/kiln/dynamo+kiln).")
    lines.append(f"Medians over {rounds} interleaved rounds; each round's value is the median of N calls "
                 f"(N per workload: " + ", ".join(f"{r['name']} {r['calls_per_round']}" for r in rows) + ").")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Compile time (subprocesses)
# --------------------------------------------------------------------------------------------


def preimport():
    """Import both compilers up front (the same set for every backend), so that first-call times
    measure compiling, not importing (`torch._dynamo` alone takes about a second here)."""
    import torch._dynamo  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401

    from kiln import capture  # noqa: F401
    import kiln.codegen.cpp  # noqa: F401
    import kiln.codegen.wrapper  # noqa: F401
    from kiln import inductor  # noqa: F401


def compile_only(name, backend, quick):
    """Child process: time the first call of one workload on one backend; print JSON."""
    t0 = time.perf_counter()
    preimport()
    result = {"name": name, "backend": backend, "import_s": time.perf_counter() - t0}
    fn, make, _ = WORKLOADS[name]
    args = make(quick)
    method = {"kiln": "kiln", "inductor": "inductor", "dynamo-kiln": "dynamo+kiln"}[backend]
    with torch.no_grad():
        try:
            compiled = make_compiled(method, fn)
            _, first = first_call(compiled, args)
            steady = time_calls(compiled, args, 3)
            result.update(first_call_s=first, steady_s=steady)
        except Exception as e:  # noqa: BLE001
            result["failed"] = _short(e)
    print("BENCH_JSON " + json.dumps(result), flush=True)


def run_child(name, backend, quick, env, timeout=900):
    cmd = [sys.executable, os.path.abspath(__file__), "--compile-only", name, "--backend", backend]
    if "OMP_NUM_THREADS" in os.environ:
        cmd += ["--threads", os.environ["OMP_NUM_THREADS"]]
    if quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"failed": f"child exited {proc.returncode}: {tail[0][:160]}"}


def compile_times(names, quick, log):
    backends = ["inductor", "kiln", "dynamo-kiln"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as root:
        for name in names:
            for backend in backends:
                cache = os.path.join(root, f"{name}-{backend}")
                os.makedirs(cache)
                env = dict(os.environ, KILN_CACHE_DIR=os.path.join(cache, "kiln"),
                           TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"))
                for phase in ("cold", "warm"):
                    r = run_child(name, backend, quick, env)
                    results[(name, backend, phase)] = r
                    log(f"  compile {name}/{backend}/{phase}: "
                        + (f"FAILED: {r['failed']}" if "failed" in r else f"{r['first_call_s']:.2f} s"))
    return results


def compile_table(names, results):
    head = ["workload", "inductor cold s", "inductor warm s", "kiln cold s", "kiln warm s",
            "dynamo+kiln cold s", "dynamo+kiln warm s", "kiln cold speed vs inductor cold",
            "kiln warm s less one steady call"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    ratios = []
    for name in names:
        cells, first = [name], {}
        for backend in ("inductor", "kiln", "dynamo-kiln"):
            for phase in ("cold", "warm"):
                r = results[(name, backend, phase)]
                if "failed" in r:
                    cells.append(f"FAILED: {r['failed']}")
                else:
                    first[(backend, phase)] = r["first_call_s"]
                    cells.append(f"{r['first_call_s']:.2f}")
        ratio = (first[("inductor", "cold")] / first[("kiln", "cold")]
                 if ("inductor", "cold") in first and ("kiln", "cold") in first else None)
        ratios.append(ratio)
        cells.append(fmt_x(ratio))
        warm = results[(name, "kiln", "warm")]
        cells.append(f"{warm['first_call_s'] - warm['steady_s']:.2f}" if "steady_s" in warm else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    imports = [r["import_s"] for r in results.values() if "import_s" in r]
    lines.append(f"Geomean cold-compile speed-up of Kiln over inductor: **{fmt_x(geomean(ratios))}x**. "
                 "First call in a fresh process (capture + compile + running the function once), after "
                 "importing torch._dynamo, torch._inductor and Kiln's packages up front in every child "
                 f"(median import time {statistics.median(imports) if imports else float('nan'):.2f} s, "
                 "not included); warm = a second fresh process with the same cache dirs. The last column "
                 "takes the median of the next three calls off Kiln's warm first call: what capture and "
                 "compiling cost beyond running the function once.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def machine_line():
    import platform

    try:
        gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:  # noqa: BLE001
        gxx = "g++ ?"
    return (f"{os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, {gxx}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, 2 rounds (smoke test)")
    p.add_argument("--only", action="append", choices=list(WORKLOADS), help="run only this workload (repeatable)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, quick 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="OpenMP/torch threads for every method (sets OMP_NUM_THREADS; default: torch's default)")
    p.add_argument("--markdown", action="store_true", help="print only the markdown report")
    p.add_argument("--no-compile-times", action="store_true", help="skip the cold/warm compile subprocesses")
    p.add_argument("--compile-times", action="store_true", help="run the compile subprocesses even with --quick")
    p.add_argument("--compile-only", metavar="NAME", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    p.add_argument("--backend", choices=["kiln", "dynamo-kiln", "inductor"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.compile_only:
        if a.threads:
            torch.set_num_threads(a.threads)
        compile_only(a.compile_only, a.backend or "kiln", a.quick)
        return 0

    names = a.only or list(WORKLOADS)
    rounds = a.rounds or (2 if a.quick else 7)
    if a.threads:
        torch.set_num_threads(a.threads)

    def log(msg):
        if not a.markdown:
            print(msg, file=sys.stderr, flush=True)

    report = [f"## Kiln CPU benchmark{' (--quick sizes)' if a.quick else ''}", "", f"Machine: {machine_line()}", ""]
    report.append("Workloads:")
    for name in names:
        report.append(f"- `{name}`: {WORKLOADS[name][2]}" + (" (smaller with --quick)" if a.quick else ""))
    report.append("")

    rows = []
    for name in names:
        log(f"steady state: {name} ...")
        t0 = time.perf_counter()
        rows.append(bench_workload(name, a.quick, rounds, log))
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    report += ["### Steady state (ms per call, median)", "", steady_table(rows, rounds), ""]
    report.append("`x roof` = time / time of `copy_` moving the same compulsory bytes "
                  "(inputs read once + outputs written once); 1.0 = memory roofline.")
    report.append("")
    first_in_process = ["In-process first calls (s; indicative only: they use the default on-disk caches, possibly warm from earlier runs): "
                        + "; ".join(f"{r['name']}: " + ", ".join(f"{m} {r['first_call'][m]:.2f}"
                                                                  for m in METHODS[1:] if m in r["first_call"])
                                    for r in rows)]
    report += first_in_process + [""]

    if (a.compile_times or not a.quick) and not a.no_compile_times:
        log("compile times (fresh subprocesses) ...")
        results = compile_times(names, a.quick, log)
        report += ["### Compile time (first call, fresh process)", "", compile_table(names, results), ""]

    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
