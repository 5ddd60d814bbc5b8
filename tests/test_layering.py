"""Layer rules (DEVELOPERS.md, docs/architecture.md), read from every import statement in the source,
function-level ones included (only `if TYPE_CHECKING:` blocks are skipped: they never run).

Across packages: capture imports no other stage; prims imports none of the others; inductor imports
prims only; codegen imports only inductor.ir and prims; only kiln/ ties all four together. Every
stage may import kiln.config and kiln.logs (settings and logging, which import no stage).
Inside capture: the layers below, and no import cycle at all.
"""
import ast
import pathlib

import networkx as nx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
STAGES = ("capture", "prims", "inductor", "codegen")
SHARED = ("kiln.config", "kiln.logs")  # any stage may import these
ALLOWED = {  # stage -> the other kiln packages it may import
    "capture": (),
    "prims": (),
    "inductor": ("kiln.prims",),
    "codegen": ("kiln.inductor.ir", "kiln.prims"),
}
# Inside capture, a module may import only modules of its own layer or lower ones.
CAPTURE_LAYERS = [
    ("bytecode", ["kiln.capture.bytecode"]),
    ("foundations", ["kiln.capture.exc", "kiln.capture.sources", "kiln.capture.guards", "kiln.capture.plans",
                     "kiln.capture.records", "kiln.capture.backends", "kiln.capture.cache",
                     "kiln.capture.dynamic"]),
    ("variables", ["kiln.capture.variables"]),
    ("graph", ["kiln.capture.side_effects", "kiln.capture.output_graph"]),
    ("opcodes", ["kiln.capture.opcodes"]),
    ("interpreter", ["kiln.capture.interpreter"]),
    ("inline/breaks", ["kiln.capture.inline", "kiln.capture.breaks"]),
    ("api", ["kiln.capture.api", "kiln.capture.explain", "kiln.capture"]),
]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "kiln" else ["kiln", *parts])


def source_files():
    for folder in (*STAGES, "kiln"):
        yield from sorted((ROOT / folder).rglob("*.py"))


MODULES = {module_name(p): p for p in source_files()}


def _runtime_nodes(tree):
    """Every node except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str) -> set[str]:
    """The kiln modules `name` imports (a `from package import x` names the submodule x when it is one)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _stage(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("stage", STAGES)
def test_layer_rules(stage):
    bad = []
    for name in MODULES:
        if _stage(name) != stage:
            continue
        for target in imports_of(name):
            if _within(target, f"kiln.{stage}") or any(_within(target, s) for s in SHARED):
                continue
            if not any(_within(target, allowed) for allowed in ALLOWED[stage]):
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_shared_modules_import_no_stage():
    for shared in SHARED:
        assert all(t in SHARED or t == "kiln" for t in imports_of(shared)), (shared, imports_of(shared))


def _capture_layer(name: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(CAPTURE_LAYERS):
        for prefix in prefixes:
            if _within(name, prefix) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{name} is in no capture layer: add it to CAPTURE_LAYERS"
    return best[0]


def test_capture_layers():
    bad = []
    for name in MODULES:
        if _stage(name) != "capture":
            continue
        for target in imports_of(name):
            if _stage(target) == "capture" and _capture_layer(target) > _capture_layer(name):
                bad.append(f"{name} ({CAPTURE_LAYERS[_capture_layer(name)][0]}) imports {target} "
                           f"({CAPTURE_LAYERS[_capture_layer(target)][0]})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", [*STAGES, "kiln"])
def test_no_import_cycle_inside_a_package(package):
    prefix = f"kiln.{package}" if package in STAGES else "kiln"
    graph = nx.DiGraph()
    for name in MODULES:
        if _within(name, prefix) and (package != "kiln" or _stage(name) is None):
            graph.add_node(name)
            graph.add_edges_from((name, t) for t in imports_of(name) if _within(t, prefix)
                                 and (package != "kiln" or _stage(t) is None))
    # a package's __init__ re-exporting its submodules is not a cycle; a submodule importing the
    # package's __init__ while the __init__ imports it is
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, cycles


def test_bytecode_handling_has_no_torch():
    # capture/bytecode/ is checked on Python versions where torch is not installed
    for path in (ROOT / "capture" / "bytecode").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
        assert not [n for n in names if n.split(".")[0] == "torch"], path


@pytest.mark.parametrize("package", [*STAGES, "kiln"])
def test_files_stay_small(package):
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in (ROOT / package).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 800]
    assert not big, big


@pytest.mark.parametrize("package", [*STAGES, "kiln"])
def test_public_face_is_short(package):
    init = ROOT / package / "__init__.py"
    assert len(init.read_text().splitlines()) <= 40


def test_only_capture_bytecode_knows_python_versions():
    readers = [str(p.relative_to(ROOT)) for p in source_files() if "version_info" in p.read_text()]
    assert readers and all(r.startswith("capture/bytecode/") for r in readers), readers
