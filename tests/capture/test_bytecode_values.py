"""The decoder's normalised forms for containers, f-strings, nested functions, cells, */** calls,
comprehensions, generators and super(), on Python 3.11, 3.12 and 3.13.

torch exists only for 3.11, so other versions load capture/bytecode/decode.py directly in a
subprocess (the bytecode package stays torch-free). Two checks: top-level instruction forms agree
across versions, and every opcode any version decodes to on the normal (non-exception) path has
a handler in the interpreter's table.
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

from kiln.capture.interpreter import HANDLERS

REPO = pathlib.Path(__file__).resolve().parents[2]

SAMPLES = textwrap.dedent('''
    def dicts(x, d):
        a = {"k": x, "n": 1}
        c = {**d, "z": x}
        return a, c, dict(d, q=1)

    def sets(x, xs):
        s = {1, 2, *xs}
        return s

    def unpacking(xs):
        first, *rest = xs
        *init, last = xs
        return first, rest, init, last, [*xs, 1], (*xs, 2)

    def fstrings(k, n):
        return f"{k!r:>4}{k}{n:03d}{k!s}{k!a}", "%s" % k

    def closures(x, k):
        g = lambda t, s=2, *, q=3: t * k + s + q
        def inner():
            nonlocal k
            k = k + 1
            return k
        return g(x), inner()

    def comprehensions(xs, k):  # 3.11 makes functions of them, 3.12+ inlines them: not compared
        return [x * k for x in xs], [y for y in xs if y], (x for x in xs), {x: 1 for x in xs}, {v for v in xs}

    def star_calls(f, args, kwargs):
        return f(*args), f(*args, **kwargs), f(1, *args, x=2, **kwargs), f(**kwargs)

    def generator(xs):
        for x in xs:
            yield x * 2

    def subscripts(d, xs):
        d["a"] = 1
        del d["b"]
        xs[1:2] = [3]
        return xs[1:3]

    class Child(dict):
        def get(self, key):
            return super().get(key)
''')

# Opcodes every version spells the same in a function's own code after normalisation.
COMPARED = {"BUILD_MAP", "BUILD_CONST_KEY_MAP", "DICT_UPDATE", "DICT_MERGE", "BUILD_SET", "SET_UPDATE",
            "UNPACK_EX", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "CONVERT_VALUE", "BUILD_STRING",
            "MAKE_FUNCTION", "MAKE_CELL", "STORE_DEREF", "LOAD_DEREF", "CALL_FUNCTION_EX",
            "STORE_SUBSCR", "DELETE_SUBSCR", "YIELD_VALUE", "RETURN_GENERATOR"}

# Opcodes only reached when an exception unwinds (tracing stops at the exception instead).
EXCEPTION_PATH = {"RERAISE", "PUSH_EXC_INFO", "POP_EXCEPT", "CHECK_EXC_MATCH", "CLEANUP_THROW"}

SCRIPT = textwrap.dedent('''
    import importlib.util, json, sys, types
    spec = importlib.util.spec_from_file_location("kiln_decode", sys.argv[1] + "/capture/bytecode/decode.py")
    decode_module = importlib.util.module_from_spec(spec)
    sys.modules["kiln_decode"] = decode_module
    spec.loader.exec_module(decode_module)
    namespace = {}
    exec(sys.argv[2], namespace)
    compared = set(json.loads(sys.argv[3]))

    def codes(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from codes(const)

    top, every = {}, set()
    functions = [value for value in namespace.values() if isinstance(value, types.FunctionType)]
    functions += [namespace["Child"].get]
    for fn in functions:
        decoded = decode_module.decode(fn)
        if fn.__name__ not in ("comprehensions", "get"):  # comprehensions and super() differ
            top[fn.__name__] = [repr(i.signature()) for i in decoded.instructions if i.opname in compared]
        for code in codes(fn.__code__):
            for instruction in decode_module.decode(code).instructions:
                every.add(instruction.opname if instruction.opname != "CALL_INTRINSIC_1"
                          else f"CALL_INTRINSIC_1:{instruction.argval}")
    print(json.dumps({"top": top, "every": sorted(every)}))
''')


def _find_python(version):
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "which", f"python{version}"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    return next((c for c in candidates if c and os.path.exists(c)), None)


def _decode_with(python):
    out = subprocess.run([python, "-c", SCRIPT, str(REPO), SAMPLES, json.dumps(sorted(COMPARED))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def reference():
    return _decode_with(sys.executable)


def _python(version):
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    python = _find_python(version)
    if python is None:
        pytest.skip(f"python{version} not installed")
    return python


def test_reference_forms(reference):
    top = reference["top"]
    assert "('MAKE_FUNCTION', 11, False, False, (), False)" in top["closures"]  # defaults|kwdefaults|closure
    assert top["fstrings"][:3] == ["('CONVERT_VALUE', 'repr', False, False, (), False)",
                                   "('FORMAT_WITH_SPEC', None, False, False, (), False)",
                                   "('FORMAT_SIMPLE', None, False, False, (), False)"]
    assert "('CONVERT_VALUE', 'ascii', False, False, (), False)" in top["fstrings"]
    assert "('UNPACK_EX', 1, False, False, (), False)" in top["unpacking"]
    assert "('UNPACK_EX', 256, False, False, (), False)" in top["unpacking"]
    assert top["generator"] == ["('RETURN_GENERATOR', None, False, False, (), False)",
                                "('YIELD_VALUE', None, False, False, (), False)"]
    assert top["subscripts"].count("('STORE_SUBSCR', None, False, False, (), False)") == 2


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_same_normalised_forms(version, reference):
    assert _decode_with(_python(version))["top"] == reference["top"]


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_every_decoded_opcode_has_a_handler(version):
    every = set(_decode_with(_python(version))["every"])
    intrinsics = {name for name in every if name.startswith("CALL_INTRINSIC_1:")}
    assert intrinsics <= {"CALL_INTRINSIC_1:LIST_TO_TUPLE", "CALL_INTRINSIC_1:STOPITERATION_ERROR"}
    missing = every - intrinsics - EXCEPTION_PATH - set(HANDLERS)
    assert not missing, f"python{version} decodes to opcodes with no handler: {sorted(missing)}"
