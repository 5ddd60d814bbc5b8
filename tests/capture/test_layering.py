"""Layer rules, checked by reading import lines."""
import pathlib
import re

CAPTURE = pathlib.Path(__file__).resolve().parents[2] / "capture"
IMPORT = re.compile(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", re.MULTILINE)


def _imports(path):
    return [a or b for a, b in IMPORT.findall(path.read_text())]


def test_capture_never_imports_inductor_or_codegen():
    for path in CAPTURE.rglob("*.py"):
        for module in _imports(path):
            root = module.split(".")[0]
            assert root not in ("inductor", "codegen"), f"{path}: imports {module}"


def test_bytecode_package_has_no_torch():
    for path in (CAPTURE / "bytecode").rglob("*.py"):
        assert not any(module.split(".")[0] == "torch" for module in _imports(path)), path


def test_files_stay_small():
    for path in CAPTURE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 600, path
