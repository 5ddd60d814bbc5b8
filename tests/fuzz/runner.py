"""Worker processes, kept alive across cases; a case that kills its worker or hangs is DEAD.

Each worker (worker.py) runs many cases in one process; the parent sends one case at a time and
waits for its result with a deadline. When the worker dies (a signal such as SIGSEGV/SIGFPE, an
abort, an exit) or misses the deadline (then it is killed, with the compilers it started), the
case is classified DEAD with the signal or "timeout" and the tail of the worker's stderr, and the
next case gets a fresh worker. Workers are also replaced every `recycle` cases, so memory held by
torch's and Kiln's caches cannot build up over a long run.

The model and OpInfo sweeps (tests/models, tests/backend_coverage.py) use the same workers with a
module of their own: `Pool(module=..., args=..., dead=...)`; a worker module's `main` hands its
per-case function to `serve`, which keeps the protocol on its own file descriptor.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_PACKAGE = __package__  # "tests.fuzz" (python -m tests.fuzz) or "fuzz" (pytest, tests/ on sys.path)
_ROOT = Path(__file__).resolve().parents[len(_PACKAGE.split("."))]
_TESTS = Path(__file__).resolve().parents[1]  # shared test modules (kiln_opinfo, ...) import from here
FUZZ_DEAD = {"fallbacks": [], "graphs": 0, "aten_fallback_ops": [], "strides": []}


def serve(handle, describe=lambda e: f"{type(e).__name__}: {e}"[:500]) -> None:
    """A worker's loop: one JSON case a line on stdin, `handle(case)`'s JSON result a line on the
    protocol; prints from torch, compilers and kernels go to stderr. A case whose handler raises is
    ERROR (the harness's own bug, reported, never hidden)."""
    import traceback

    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if os.environ.get("KILN_WORKER_MEMORY_GB"):  # a case that needs more fails (MemoryError), not the machine
        import resource

        limit = int(float(os.environ["KILN_WORKER_MEMORY_GB"]) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for line in sys.stdin:
        case = json.loads(line)
        try:
            result = handle(case)
        except Exception as e:  # noqa: BLE001
            result = {"id": case["id"], "class": "ERROR", "kind": "harness", "detail": describe(e),
                      "traceback": traceback.format_exc()[-3000:]}
        protocol.write(json.dumps(result, default=str) + "\n")
        protocol.flush()


class Worker:
    """`python -m MODULE *ARGS` (default: the fuzzer's worker for `entry` and `target`); `dead`: the
    fields a DEAD result carries besides id, class, kind, detail and stderr; `memory_gb`: the
    worker's address-space limit (a case needing more raises MemoryError instead of swapping or
    waking the OOM killer on a shared machine)."""

    def __init__(self, entry: str, target: str, timeout: float, threads: int | None = None, *,
                 module: str | None = None, args: list[str] | None = None, dead: dict | None = None,
                 memory_gb: float | None = None):
        self.entry, self.target, self.timeout, self.threads = entry, target, timeout, threads
        self.module = module or f"{_PACKAGE}.worker"
        self.args = args if module else ["--entry", entry, "--target", target]
        self.dead = FUZZ_DEAD if dead is None else dead
        self.memory_gb = memory_gb  # address-space limit of the worker (serve applies it)
        self.proc: subprocess.Popen | None = None
        self.stderr = None
        self.served = 0

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), str(_TESTS), env.get("PYTHONPATH")]))
        if self.target == "triton":
            env.setdefault("TRITON_INTERPRET", "1")
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        if self.memory_gb:
            env["KILN_WORKER_MEMORY_GB"] = str(self.memory_gb)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=_ROOT,
            start_new_session=True)  # its own process group: a timeout kills g++ too
        self.served = 0

    def run(self, case: dict, recycle: int = 150) -> dict:
        if self.proc is None or self.proc.poll() is not None or self.served >= recycle:
            self.close()
            self._start()
        self.served += 1
        try:
            self.proc.stdin.write((json.dumps(case) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._dead(case, "died before the case was sent")
        # the first case also pays for importing torch and Kiln
        deadline = time.monotonic() + self.timeout + (60 if self.served == 1 else 0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                return self._dead(case, f"timeout after {self.timeout:.0f}s")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    return json.loads(line)
                self.proc.wait()
                return self._dead(case, _exit_text(self.proc.returncode))

    def _dead(self, case: dict, why: str) -> dict:
        tail = ""
        if self.stderr is not None:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 1500))
            tail = self.stderr.read().decode(errors="replace")
        self.close()
        key = why.split(" after ")[0].split(" (")[0]
        return {**self.dead, "id": case["id"], "class": "DEAD", "kind": key, "detail": f"worker {why}",
                "stderr": tail}

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._kill()
            self.proc.stdout.close()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Pool:
    """`jobs` workers for one entry point and target; `map` yields results as they finish."""

    def __init__(self, entry: str, target: str, *, jobs: int = 1, timeout: float = 120.0, **worker):
        cores = os.cpu_count() or 1
        threads = max(1, cores // jobs) if "OMP_NUM_THREADS" not in os.environ else None
        self.workers = [Worker(entry, target, timeout, threads, **worker) for _ in range(jobs)]

    def run_one(self, case: dict) -> dict:
        return self.workers[0].run(case)

    def map(self, cases):
        """Results in completion order (each carries its case's id)."""
        todo: queue.Queue = queue.Queue()
        done: queue.Queue = queue.Queue()
        n = 0
        for case in cases:
            todo.put(case)
            n += 1

        def serve(worker: Worker):
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                done.put(worker.run(case))

        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in self.workers]
        for t in threads:
            t.start()
        for _ in range(n):
            yield done.get()
        for t in threads:
            t.join()

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
