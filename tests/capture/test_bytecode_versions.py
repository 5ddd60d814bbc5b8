"""The decoder gives the same normalised forms on Python 3.11, 3.12 and 3.13.

torch exists only for 3.11, so the other versions load capture/bytecode/decode.py
directly (the bytecode package must stay torch-free) in a subprocess.
"""
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

SAMPLES = textwrap.dedent('''
    def calls_with_kwargs(x, y):
        return torch.softmax(x + y, dim=-1), x.sum(dim=1, keepdim=True)

    def methods_and_globals(x):
        a = torch.nn.functional.relu(x)
        return a.exp().log1p(), helper(a)

    def binary_ops(x, y):
        a = x * 2.0 + y / 3 - x // 4 % 5 ** 2
        a += 1
        return a @ y, -a, ~a

    def compares(x, n):
        return x < 3, n >= 2, x == n, x != 1

    def returns_none(x):
        y = x
        return None

    def returns_const(x):
        return 7

    def with_block(x):
        with torch.no_grad():
            y = x * 2
        with torch.enable_grad() as entered:
            return y + 1
''')

# Opcodes every version spells the same after normalisation (others, e.g. PUSH_NULL's
# position or TO_BOOL, legitimately differ).
COMPARED = {"LOAD_FAST", "STORE_FAST", "LOAD_CONST", "LOAD_GLOBAL", "LOAD_ATTR", "CALL", "BINARY_OP",
            "COMPARE_OP", "RETURN_VALUE", "BUILD_TUPLE", "UNARY_NEGATIVE", "UNARY_INVERT", "BEFORE_WITH"}

SCRIPT = textwrap.dedent('''
    import importlib.util, json, sys
    sys.path.insert(0, sys.argv[1])
    spec = importlib.util.spec_from_file_location("kiln_decode", sys.argv[1] + "/capture/bytecode/decode.py")
    decode_module = importlib.util.module_from_spec(spec)
    sys.modules["kiln_decode"] = decode_module
    spec.loader.exec_module(decode_module)
    namespace = {}
    exec(sys.argv[2], namespace)
    compared = set(json.loads(sys.argv[3]))
    result = {}
    for name, fn in namespace.items():
        if callable(fn) and hasattr(fn, "__code__"):
            decoded = decode_module.decode(fn)
            result[name] = [repr(i.signature()) for i in decoded.instructions if i.opname in compared]
            for position, inst in enumerate(decoded.instructions):  # each with block's cleanup handler
                if inst.opname == "BEFORE_WITH":
                    entry = decoded.handler_at(decoded.instructions[position + 1].offset)
                    target = decoded.instructions[decoded.index_of_offset[entry.target]]
                    result[name].append(f"handler {target.opname} {decoded.instructions[decoded.index_of_offset[entry.target] + 1].opname} depth {entry.depth}")
    print(json.dumps(result))
''')


def _find_python(version):
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "which", f"python{version}"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _decode_with(python):
    out = subprocess.run([python, "-c", SCRIPT, str(REPO), SAMPLES, json.dumps(sorted(COMPARED))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def reference():
    return _decode_with(sys.executable)


def test_reference_forms(reference):
    calls = [s for s in reference["calls_with_kwargs"] if s.startswith("('CALL'")]
    assert calls == ["('CALL', 2, False, False, ('dim',), False)",
                     "('CALL', 2, False, False, ('dim', 'keepdim'), False)"]
    assert "('LOAD_ATTR', 'softmax', True, False, (), False)" in reference["calls_with_kwargs"]
    assert "('LOAD_GLOBAL', 'helper', False, True, (), False)" in reference["methods_and_globals"]
    assert "('BINARY_OP', 'add', False, False, (), True)" in reference["binary_ops"]
    assert "('COMPARE_OP', '>=', False, False, (), False)" in reference["compares"]
    assert reference["returns_none"][-2:] == ["('LOAD_CONST', None, False, False, (), False)",
                                              "('RETURN_VALUE', None, False, False, (), False)"]
    # Both with blocks: the body's exception-table row leads to the cleanup handler.
    assert reference["with_block"][-2:] == ["handler PUSH_EXC_INFO WITH_EXCEPT_START depth 1"] * 2
    # The normal exit: __exit__(None, None, None) is a plain CALL of 2 on every version.
    assert reference["with_block"].count("('CALL', 2, False, False, (), False)") == 2


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_same_normalised_forms(version, reference):
    python = _find_python(version)
    if python is None:
        pytest.skip(f"python{version} not installed")
    assert _decode_with(python) == reference
