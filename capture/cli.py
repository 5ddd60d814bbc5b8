"""The `kiln` command: demo, dump and explain.

    kiln demo [--target cpp|triton] [-o DIR]
    kiln dump SCRIPT.py [--target cpp|triton] [-o DIR] [-- script args]
    kiln explain SCRIPT.py [-- script args]
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path


def _run_script(script: str, script_args) -> None:
    sys.argv = [script, *script_args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out, args.target)


def cmd_dump(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The stages read these when they compile; nothing here needs to import the back end.
    os.environ["KILN_DUMP_DIR"] = str(out)
    if args.target:
        os.environ["KILN_TARGET"] = args.target
    _run_script(args.script, args.script_args)
    graphs = sorted(p for p in out.iterdir() if p.is_dir())
    print(f"kiln dump: {len(graphs)} graph(s) written to {out}")
    for g in graphs:
        print(f"  {g.name}/: " + ", ".join(sorted(p.name for p in g.iterdir())))
    return 0


def cmd_explain(args) -> int:
    import capture
    from capture.explain import op_count

    _run_script(args.script, args.script_args)
    records = capture.compiled_records()
    graphs = [r for r in records if r.graph is not None]
    graph_breaks = [r for r in records if r.graph_break is not None]
    eager = [r for r in records if r.reason]
    print(f"kiln explain: {len(graphs)} graph(s) compiled, {len(graph_breaks)} graph break(s), "
          f"{len(eager)} function(s) fell back to eager")
    for r in records:
        if r.reason:
            print(f"  {r.name} ({r.location}): ran eagerly\n    reason: {r.reason}")
            continue
        what = "no ops" if r.graph is None else f"1 graph, {op_count(r.graph)} ops"
        print(f"  {r.name} ({r.location}): {what}, {len(r.guards.splitlines())} guards")
        if r.graph_break is not None:
            print(f"    graph break at {r.graph_break.location}: {r.graph_break.reason}\n"
                  f"      hint: {r.graph_break.hint}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kiln", description="Kiln: a small graph-capture compiler for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="compile a small model-like function, check it against eager and time it")
    p.add_argument("--target", choices=["cpp", "triton"], default=None)
    p.add_argument("-o", "--out", default="kiln_demo", help="where the generated code is written")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("dump", help="run a script and write every stage of every graph it compiles")
    p.add_argument("script")
    p.add_argument("--target", choices=["cpp", "triton"], default=None)
    p.add_argument("-o", "--out", default="kiln_dump")
    p.set_defaults(fn=cmd_dump)
    p = sub.add_parser("explain", help="run a script and list its graphs and graph breaks with reasons")
    p.add_argument("script")
    p.set_defaults(fn=cmd_explain)
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args = argv[argv.index("--") + 1:] if "--" in argv else []  # everything after -- goes to the script
    args = parser.parse_args(argv[: len(argv) - len(script_args) - (1 if "--" in argv else 0)])
    args.script_args = script_args
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
