"""Resume functions and break entries against real CPython frames, on 3.11, 3.12 and 3.13.

The corpus (tests/resume_corpus) snapshots a real frame at each offset and checks that the
generated code, called with those values, finishes the call exactly as the original did. It
is torch-free, so 3.12/3.13 (which have no torch here) run it in a subprocess.
"""
import json
import os
import pathlib
import subprocess

import pytest

from resume_corpus import break_check, emit_check, resume_check
from resume_corpus.functions import CASES
from resume_corpus.interpreters import bytecode_path_for, find_python

REPO = pathlib.Path(__file__).resolve().parents[2]


def _assert_clean(report: dict, name: str) -> None:
    assert not report["failures"], "\n".join(report["failures"][:5])
    assert report["checked"] > 0, f"{name}: nothing was checked ({report['unsupported'][:3]})"


def test_emit_helpers():
    _assert_clean(emit_check.check(), "emit helpers")


@pytest.mark.parametrize("name", sorted(CASES))
def test_resume_at_every_offset(name):
    _assert_clean(resume_check.check_case(name), name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_break_at_every_instruction(name):
    _assert_clean(break_check.check_case(name), name)


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_other_python_versions(version):
    python = find_python(version)
    if python is None:
        pytest.skip(f"python{version} is not installed")
    extra_path, how = bytecode_path_for(python)
    if extra_path is None:
        pytest.skip(how)
    run = subprocess.run([python, str(REPO / "tests/resume_corpus/run_versions.py"), str(REPO), *extra_path],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["version"] == [int(part) for part in version.split(".")]
    for kind in ("emit", "resume", "break"):
        for name, case in report[kind].items():
            _assert_clean(case, f"{kind} {name} on {version}")
