"""Layer rules from DEVELOPERS.md, checked by reading import lines; and the file-size rule."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", re.MULTILINE)
FORBIDDEN = {
    "capture": {"inductor", "codegen"},  # capture only knows the backend protocol
    "prims": {"capture", "inductor", "codegen"},  # the bottom layer
    "codegen": {"capture"},
}


def _imports(path):
    return [(a or b).split(".")[0] for a, b in IMPORT.findall(path.read_text())]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_rules(package):
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in (ROOT / package).rglob("*.py")
           for m in _imports(p) if m in FORBIDDEN[package]]
    assert not bad, bad


def test_bytecode_handling_has_no_torch():
    # capture/bytecode/ is checked on Python versions where torch is not installed
    for path in (ROOT / "capture" / "bytecode").rglob("*.py"):
        assert "torch" not in _imports(path), path


@pytest.mark.parametrize("package", ["capture", "prims", "inductor", "codegen"])
def test_files_stay_small(package):
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in (ROOT / package).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 800]
    assert not big, big


@pytest.mark.parametrize("package", ["capture", "prims", "inductor", "codegen"])
def test_public_face_is_short(package):
    init = ROOT / package / "__init__.py"
    assert len(init.read_text().splitlines()) <= 40
