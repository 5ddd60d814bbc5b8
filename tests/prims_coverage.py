"""The prims coverage table: every OpInfo op that supports float32 on CPU, through trace -> decompose
-> the prims' reference implementations, compared with eager (the check of tests/prims/test_opinfo.py).

    python tests/prims_coverage.py                   # first 4 samples per (op, dtype), float32
    python tests/prims_coverage.py --full            # every sample
    python tests/prims_coverage.py --dtypes float32,int64,bool --ops sin,cat
    python tests/prims_coverage.py --full --markdown docs/prims_coverage.md

An op counts as *prims* when every sample decomposes to prims only (extern prims included; they
are listed) and matches eager; *fallback* when it matches but some ATen op became a kiln.fallback
node; *unsupported* when Kiln refuses the graph (UnsupportedGraph, with the reason); *fail* for
anything else (a mismatch or an error). An op's status is its worst sample's.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import os
import pathlib
import platform
import signal
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's packages, and kiln_opinfo

import torch  # noqa: E402
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

from kiln_opinfo import PrimsResult, check_prims, describe  # noqa: E402
from kiln.prims.decomp.registry import FALLBACK_REASONS  # noqa: E402

ORDER = ["n/a", "prims", "fallback", "unsupported", "fail"]
DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def op_name(op) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def check_op(op, dtype, limit, timeout):
    """(status, detail, fallbacks, externs, random, samples checked) for one (op, dtype)."""
    torch.manual_seed(0)
    worst = PrimsResult("n/a", "no sample eager can run")
    fallbacks, externs, random, n = set(), set(), False, 0
    signal.alarm(timeout)
    try:
        for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=False)):
            if limit is not None and i >= limit:
                break
            try:
                r = check_prims(op, sample)
            except _Timeout:
                raise
            except Exception as e:  # noqa: BLE001 - the table reports it
                r = PrimsResult("fail", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            n += 1
            fallbacks |= set(r.fallbacks)
            externs |= set(r.externs)
            random |= r.random
            if r.status == "n/a":
                continue
            if ORDER.index(r.status) > ORDER.index(worst.status) or worst.status == "n/a":
                first = r.detail.strip().splitlines()[0] if r.detail.strip() else ""
                detail = "" if r.status == "prims" else f"sample {i} {describe(sample)}: {first}"[:400]
                worst = PrimsResult(r.status, detail)
    except _Timeout:
        worst = PrimsResult("fail", f"timed out after {timeout}s")
    except Exception as e:  # noqa: BLE001 - sample generation itself fails on CPU: nothing to run
        worst = PrimsResult("n/a", f"sample generation: {type(e).__name__}: {str(e).splitlines()[0]}"[:400])
    finally:
        signal.alarm(0)
    status = worst.status
    if status == "prims" and fallbacks:
        status = "fallback"
    return status, worst.detail, sorted(fallbacks), sorted(externs), random, n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="every sample (default: the first --samples)")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--dtypes", default="float32", help="comma-separated: float32,int64,bool")
    ap.add_argument("--ops", default="", help="comma-separated OpInfo names (name or name.variant)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per (op, dtype)")
    ap.add_argument("--markdown", help="also write the table as markdown to this file")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)
    limit = None if args.full else args.samples
    wanted = set(filter(None, args.ops.split(",")))
    ops = [op for op in op_db if torch.float32 in op.supported_dtypes("cpu")
           and (not wanted or op.name in wanted or op_name(op) in wanted)]
    rows = []
    start = time.time()
    for op in ops:
        supported = op.supported_dtypes("cpu")
        for dname in args.dtypes.split(","):
            if DTYPES[dname] not in supported:
                continue
            status, detail, fb, ext, rnd, n = check_op(op, DTYPES[dname], limit, args.timeout)
            rows.append((op_name(op), dname, status, detail, fb, ext, rnd, n))
            print(f"{op_name(op):40s} {dname:8s} {status:12s} {detail[:150]}", flush=True)
    elapsed = time.time() - start
    text = report(rows, args, elapsed)
    print(text)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)


def report(rows, args, elapsed) -> str:
    when = datetime.date.today().isoformat()
    cmd = "python tests/prims_coverage.py " + " ".join(sys.argv[1:])
    out = [f"# Prims coverage of PyTorch's OpInfo ops\n",
           f"Measured {when} on {platform.machine()} ({os.cpu_count()} cores), torch {torch.__version__}, "
           f"in {elapsed:.0f} s, with `{cmd.strip()}`", ""]
    for dname in args.dtypes.split(","):
        mine = [r for r in rows if r[1] == dname]
        if not mine:
            continue
        counts = collections.Counter(r[2] for r in mine)
        total = len(mine) - counts["n/a"]
        ext = sum(1 for r in mine if r[2] == "prims" and r[5])
        rnd = sum(1 for r in mine if r[2] == "prims" and r[6])
        out.append(f"## {dname}: {counts['prims']} of {total} ops ({100 * counts['prims'] / max(total, 1):.1f}%) "
                   "decompose fully to prims and match eager\n")
        if counts["n/a"]:
            out.append(f"({len(mine)} OpInfo ops support {dname} on CPU; {counts['n/a']} are left out because eager "
                       "itself fails on their CPU samples: listed under n/a.)\n")
        out.append("| status | ops |\n|---|---|")
        for s in ORDER:
            out.append(f"| {s} | {counts[s]} |")
        out.append(f"\nOf the {counts['prims']} *prims* ops, {ext} use extern prims and {rnd} draw random "
                   "numbers (compared by shape and dtype; see tests/prims/test_random.py).\n")
        for s in ORDER[2:] + ORDER[:1]:
            sel = [r for r in mine if r[2] == s]
            if not sel:
                continue
            out.append(f"### {s} ({len(sel)})\n")
            out.append("| op | reason |\n|---|---|")
            for name, _, _, detail, fb, _, _, _ in sel:
                reason = ("ATen ops without decomposition: " + ", ".join(
                    f"{f} ({FALLBACK_REASONS[f]})" if f in FALLBACK_REASONS else f for f in fb)) if s == "fallback" \
                    else detail
                out.append(f"| {name} | {reason.replace('|', '/').replace(chr(10), ' ')} |")
            out.append("")
        used = collections.Counter(e for r in mine if r[2] == "prims" for e in r[5])
        if used:
            out.append("Extern prims used by *prims* ops: " + ", ".join(f"{k} ({v})" for k, v in sorted(used.items())))
            out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
