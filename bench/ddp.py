"""Distributed training benchmark: one DDP training step on 2 processes (gloo, loopback), eager vs
torch.compile (inductor) vs Kiln on both entry points.

Usage (from the repository root, in the virtualenv):

    python bench/ddp.py                  # gelu_mlp and gpt2_tiny, 5 rounds
    python bench/ddp.py --quick          # small sizes, 2 rounds
    python bench/ddp.py --only gpt2_tiny

What is measured
  * One step = forward + loss + backward (DDP all-reduces the gradients in its buckets) + AdamW
    step + zero_grad, on each rank with its own batch; each rank uses 1 thread (2 ranks share the
    machine's cores). The workloads are bench/training.py's.
      eager        DistributedDataParallel(module)
      inductor     torch.compile(ddp)                    (TorchDynamo's DDPOptimizer splits the graph)
      kiln         kiln.compile(ddp)                     (Kiln splits it: capture/distributed.py)
      dynamo+kiln  torch.compile(ddp, backend="kiln")    (DDPOptimizer's pieces, Kiln's back end)
    DDP's default buckets (25 MB, a 1 MB first bucket). KILN_STRICT=1: a Kiln fallback fails the row.
  * First step: compile + one step, per method, in the order above (caches as they are: run twice
    for warm numbers). Steady state: methods interleaved round by round on every rank; each round
    the median of N steps; rank 0's medians and median per-round ratios are printed.

No timing assertions live here or in the tests.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import warnings

os.environ.setdefault("KILN_STRICT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

METHODS = ("eager", "inductor", "kiln", "dynamo+kiln")


def _compile(method, ddp):
    import kiln

    return {"eager": lambda m: m, "inductor": torch.compile, "kiln": kiln.compile,
            "dynamo+kiln": lambda m: torch.compile(m, backend="kiln")}[method](ddp)


class Runner:
    def __init__(self, method, module, batch, loss_fn):
        import copy

        from torch.nn.parallel import DistributedDataParallel as DDP

        self.ddp = DDP(copy.deepcopy(module))
        self.compiled = _compile(method, self.ddp)
        self.opt = torch.optim.AdamW(self.ddp.parameters(), lr=1e-3)
        self.batch, self.loss_fn = batch, loss_fn

    def step(self):
        loss = self.loss_fn(self.compiled, *self.batch)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()


def _steps(runner, n):
    times = []
    for _ in range(n):
        dist.barrier()  # ranks start each step together: a step's time includes waiting for the other
        t0 = time.perf_counter()
        runner.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rank(rank, world, port, names, quick, rounds, queue, methods=METHODS):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    import training  # bench/training.py: the workloads

    rows = []
    for name in names:
        torch.manual_seed(0)
        module, batch, loss_fn = training.WORKLOADS[name][0](quick)
        g = torch.Generator().manual_seed(rank)
        batch = tuple(torch.randn(b.shape, generator=g) if b.is_floating_point() else
                      torch.randint(0, int(b.max()) + 1, b.shape, generator=g) for b in batch)
        row = {"name": name, "first": {}, "times": {}, "failed": {}, "pieces": {}}
        runners = {}
        import kiln
        torch._dynamo.reset()  # once per workload: a reset between methods makes the compiled ones recompile
        kiln.reset()
        for method in [m for m in METHODS if m in methods]:
            try:
                runner = Runner(method, module, batch, loss_fn)
                dist.barrier()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    t0 = time.perf_counter()
                    runner.step()
                    row["first"][method] = time.perf_counter() - t0
                bad = [w for w in caught if type(w.message).__name__ in ("KilnCompileWarning", "FallbackWarning")]
                if bad:
                    raise RuntimeError(f"Kiln fell back to eager: {bad[0].message}")
                if method == "kiln":
                    row["pieces"][method] = sum(len(s.buckets) for s in kiln.capture.distributed.ddp_splits())
                runner.step()
                runners[method] = runner
            except Exception as e:  # noqa: BLE001  (a failing method is a result)
                row["failed"][method] = f"{type(e).__name__}: {str(e)[:200]}"
                print(f"rank {rank}: {name}/{method} FAILED: {row['failed'][method]}", file=sys.stderr, flush=True)
        failed = [None] * world
        dist.all_gather_object(failed, sorted(row["failed"]))
        for m in set().union(*map(set, failed)):  # a method that failed on any rank is dropped on all
            runners.pop(m, None)
            row["failed"].setdefault(m, "failed on another rank")
        probe = _steps(runners["eager"], 1)
        steps = max(1, min(10, int((0.05 if quick else 0.3) / max(probe, 1e-6))))
        samples = {m: [] for m in runners}
        for _ in range(rounds):
            for m, r in runners.items():
                samples[m].append(_steps(r, steps))
        row["times"] = {m: statistics.median(s) for m, s in samples.items()}
        row["ratios"] = {(m, base): statistics.median(b / k for b, k in zip(samples[base], samples[m]))
                         for m in ("kiln", "dynamo+kiln") if m in samples for base in ("eager", "inductor")
                         if base in samples}
        rows.append(row)
    if rank == 0:
        queue.put(rows)
    dist.destroy_process_group()


def _table(rows) -> str:
    lines = ["| workload | eager ms | inductor ms | kiln ms | dynamo+kiln ms | kiln vs eager | kiln vs inductor "
             "| dynamo+kiln vs eager | dynamo+kiln vs inductor | first step s (eager / inductor / kiln / dynamo+kiln) "
             "| kiln graphs after the DDP split |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["times"]
        ms = [f"{t[m] * 1e3:.1f}" if m in t else "FAILED" for m in METHODS]
        ratios = [f"{r['ratios'][(m, b)]:.2f}x" if (m, b) in r["ratios"] else "-"
                  for m in ("kiln", "dynamo+kiln") for b in ("eager", "inductor")]
        first = " / ".join(f"{r['first'][m]:.2f}" if m in r["first"] else "-" for m in METHODS)
        lines.append(f"| {r['name']} | " + " | ".join(ms + ratios) + f" | {first} | {r['pieces'].get('kiln', '-')} |")
    for r in rows:
        for m, why in r["failed"].items():
            lines.append(f"\n{r['name']}/{m} FAILED: {why}")
    return "\n".join(lines)


def main(argv=None):
    import training

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(training.WORKLOADS))
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--method", action="append", choices=METHODS, help="only these methods (eager always runs)")
    args = parser.parse_args(argv)
    names = args.only or ["gelu_mlp", "gpt2_tiny"]
    rounds = args.rounds or (2 if args.quick else 5)
    methods = ("eager", *(args.method or METHODS[1:]))
    crashed = []
    for workload in names:  # one spawn per workload: a method that kills a rank costs only its row
        _spawn(workload, args, rounds, methods, crashed)
    from cpu_bench import machine_line

    print(f"bench/ddp.py: 2 ranks (gloo, loopback), 1 thread each; {machine_line()}")
    print(_table(ROWS))
    for name, method in crashed:
        print(f"\n{name}/{method}: the ranks died (a native abort, no Python error) with it in the run; "
              "the row was measured again without it")


ROWS = []


def _spawn(name, args, rounds, methods, crashed):
    """Measure one workload; if a rank dies (gloo aborts on a crashed peer), measure it again
    without each compiled method in turn until the ranks live, and name the one left out."""
    for left_out in (None, *methods[1:]):
        run = tuple(m for m in methods if m != left_out)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        try:
            mp.spawn(_rank, args=(2, port, [name], args.quick, rounds, queue, run), nprocs=2, join=True)
        except (mp.ProcessExitedException, mp.ProcessRaisedException):
            continue
        row = queue.get()[0]
        if left_out is not None:
            row["failed"][left_out] = "the ranks died with it in the run (native abort)"
            crashed.append((name, left_out))
        ROWS.append(row)
        return
    ROWS.append({"name": name, "first": {}, "times": {}, "failed": {"eager": "the ranks died"}, "pieces": {},
                 "ratios": {}})


if __name__ == "__main__":
    main()
