"""The `kiln` command: demo, dump, explain and profile.

    kiln demo [--target cpp|triton] [-o DIR]
    kiln dump SCRIPT.py [--target cpp|triton] [-o DIR] [-- ARGS]
    kiln explain SCRIPT.py [-- ARGS]
    kiln profile SCRIPT.py [--top N] [-- ARGS]
    kiln --version
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import kiln
from kiln import capture, config, records
from kiln.capture import distributed
from kiln.capture.explain import op_count

EPILOG = "Everything after `--` is passed to SCRIPT.py as its own arguments (sys.argv[1:])."


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
    config.dump_dir = out
    if args.target:
        config.target = args.target
    _run_script(args.script, args.script_args)
    graphs = sorted(p for p in out.iterdir() if p.is_dir())
    print(f"kiln dump: {len(graphs)} graph(s) written to {out}")
    for g in graphs:
        print(f"  {g.name}/: " + ", ".join(sorted(p.name for p in g.iterdir())))
    return 0


def _backend_result(done, indent: str) -> str:
    text = f", {done.kernels} kernel(s)" if done.compiled else f"; Kiln's back end ran it eagerly{indent}reason: {done.reason}"
    return text + records.fallback_lines(done.fallbacks, indent)


def explain_report() -> str:
    """What `kiln explain` prints: capture's records (kiln.compile) with what the back end did with
    each graph, then the graphs TorchDynamo handed to the back end (torch.compile(backend="kiln"))."""
    captured = capture.compiled_records()
    backend = records.backend_records()
    by_graph = {id(r.graph()): r for r in backend if r.graph() is not None}
    splits = {id(s.graph()): s for s in distributed.ddp_splits()}
    seen = set()
    lines = []
    for r in captured:
        if r.reason:
            lines.append(f"  {r.name} ({r.location}): ran eagerly\n    reason: {r.reason}")
            continue
        what = "no ops" if r.graph is None else f"1 graph, {op_count(r.graph)} ops"
        line = f"  {r.name} ({r.location}): {what}, {len(r.guards.splitlines())} guards"
        done = by_graph.get(id(r.graph)) if r.graph is not None else None
        split = splits.get(id(r.graph))
        if split is not None and len(split.buckets) > 1:
            line += "\n    " + str(split).replace("\n", "\n    ")
            for i, piece in enumerate(split.pieces):
                if id(piece) in by_graph:
                    seen.add(id(by_graph[id(piece)]))
                    line += f"\n    piece {i}: {op_count(piece)} ops" + _backend_result(by_graph[id(piece)], "\n      ")
        elif done is not None:
            seen.add(id(done))
            line += _backend_result(done, "\n    ")
        lines.append(line)
        if r.graph_break is not None:
            lines.append(f"    graph break at {r.graph_break.location}: {r.graph_break.reason}\n"
                         f"      hint: {r.graph_break.hint}")
    dynamo = [r for r in backend if id(r) not in seen]
    if dynamo:
        lines.append("  graphs from TorchDynamo (torch.compile(..., backend=\"kiln\")):")
        lines += ["    " + str(r).replace("\n", "\n  ") for r in dynamo]
    graphs = [r for r in captured if r.graph is not None]
    eager_graphs = [r for r in backend if not r.compiled]
    head = (f"kiln explain: {len(graphs) + len(dynamo)} graph(s) captured ({len(dynamo)} by TorchDynamo), "
            f"{len(eager_graphs)} of them ran eagerly in the back end, "
            f"{sum(r.graph_break is not None for r in captured)} graph break(s), "
            f"{sum(bool(r.reason) for r in captured)} function(s) fell back to eager")
    ops = sum(r.fallback_count for r in backend)
    head += f", {ops} op-level fallback(s) inside compiled graphs" if ops else ""
    return "\n".join([head, *lines])


def cmd_explain(args) -> int:
    _run_script(args.script, args.script_args)
    print(explain_report())
    return 0


def cmd_profile(args) -> int:
    config.profile = True
    _run_script(args.script, args.script_args)
    print(kiln.profile_report(args.top))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="Kiln: a small graph-capture compiler for PyTorch.",
                                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"kiln {kiln.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,dump,explain,profile}")
    p = sub.add_parser("demo", help="compile a small model-like function, check it against eager and time it")
    p.add_argument("--target", choices=["cpp", "triton"], default=None)
    p.add_argument("-o", "--out", default=None, help="where the generated code is written (default: a new temp dir)")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("dump", help="run a script and write every stage of every graph it compiles",
                       usage="kiln dump SCRIPT.py [--target {cpp,triton}] [-o DIR] [-- ARGS]", epilog=EPILOG)
    p.add_argument("script", metavar="SCRIPT.py")
    p.add_argument("--target", choices=["cpp", "triton"], default=None)
    p.add_argument("-o", "--out", default="kiln_dump", help="where to write graph_NNN/ folders (default: ./kiln_dump)")
    p.set_defaults(fn=cmd_dump)
    p = sub.add_parser("explain", help="run a script and list its graphs, graph breaks and fallbacks with reasons",
                       usage="kiln explain SCRIPT.py [-- ARGS]", epilog=EPILOG)
    p.add_argument("script", metavar="SCRIPT.py")
    p.set_defaults(fn=cmd_explain)
    p = sub.add_parser("profile", help="run a script and print where its compiled graphs spend their time",
                       usage="kiln profile SCRIPT.py [--top N] [-- ARGS]", epilog=EPILOG)
    p.add_argument("script", metavar="SCRIPT.py")
    p.add_argument("--top", type=int, default=30, help="how many steps to list (default 30)")
    p.set_defaults(fn=cmd_profile)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args = argv[argv.index("--") + 1:] if "--" in argv else []  # everything after -- goes to the script
    args = parser.parse_args(argv[: len(argv) - len(script_args) - (1 if "--" in argv else 0)])
    args.script_args = script_args
    script = getattr(args, "script", None)
    if script is not None and not Path(script).is_file():
        print(f"kiln {args.command}: no such script: {script}", file=sys.stderr)
        return 2
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
