"""Kiln installs one import name, `kiln`: the four stage folders install as kiln.capture, kiln.prims,
kiln.inductor and kiln.codegen, so a user's own folders with those names cannot shadow them."""
import importlib.metadata
import pathlib
import subprocess
import sys
import tomllib

import kiln

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
STAGES = ("capture", "prims", "inductor", "codegen")


def _python(code, cwd, **env):
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_every_package_folder_is_installed():
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    assert mapping == {"kiln": "kiln", **{f"kiln.{s}": s for s in STAGES}}
    folders = {p.parent for folder in ("kiln", *STAGES) for p in (ROOT / folder).rglob("__init__.py")}
    expected = set()
    for folder in folders:
        rel = folder.relative_to(ROOT).parts
        expected.add(".".join(rel if rel[0] == "kiln" else ("kiln", *rel)))
    assert set(setuptools["packages"]) == expected


def test_version_and_distribution_name():
    assert PYPROJECT["project"]["name"] == "kiln-compiler"
    assert kiln.__version__ == importlib.metadata.version("kiln-compiler")
    out = subprocess.run([sys.executable, "-m", "kiln", "--version"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == f"kiln {kiln.__version__}"


def test_no_top_level_stage_imports(tmp_path):
    for stage in STAGES:
        out = _python(f"import {stage}", cwd=tmp_path)
        assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, (stage, out.stderr)
        # even from the repository root, where the folders are on sys.path: one copy of each module
        out = _python(f"import {stage}", cwd=ROOT)
        assert out.returncode != 0 and f"imported as kiln.{stage}" in out.stderr, (stage, out.stderr)


SCRIPT = """
import warnings
import torch
import kiln

warnings.simplefilter("error")  # no fallback warning either
def f(x):
    return torch.softmax(x.sin() * 2, -1)
x = torch.randn(4, 8)
with torch.no_grad():
    for compiled in (torch.compile(f, backend="kiln"), kiln.compile(f)):
        torch.testing.assert_close(compiled(x), f(x))
import prims, capture, inductor, codegen  # the user's own packages, untouched by Kiln
print("ok", prims.MINE, capture.MINE, inductor.MINE, codegen.MINE)
"""


def test_users_own_stage_named_folders_do_not_shadow_kiln(tmp_path):
    for stage in STAGES:  # a user's project with its own packages of these names
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "__init__.py").write_text(f"MINE = {stage!r}\n")
    (tmp_path / "script.py").write_text(SCRIPT)
    out = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "KILN_STRICT": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "prims", "capture", "inductor", "codegen"]
