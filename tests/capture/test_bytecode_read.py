"""Reading co_code directly gives exactly what dis.get_instructions gives, and the same decode,
for every code object in capture/ and tests/capture/, on Python 3.11, 3.12 and 3.13; decoded
instructions equal the same instructions built through the dataclass's __init__.

The other versions load capture/bytecode/decode.py on its own (torch-free) in a subprocess.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from tests.capture.test_bytecode_versions import REPO, _find_python

SCRIPT = textwrap.dedent('''
    import dataclasses, importlib.util, json, pathlib, sys, types
    repo = sys.argv[1]
    spec = importlib.util.spec_from_file_location("kiln_decode", repo + "/capture/bytecode/decode.py")
    decode_module = importlib.util.module_from_spec(spec)
    sys.modules["kiln_decode"] = decode_module
    spec.loader.exec_module(decode_module)

    def code_objects(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from code_objects(const)

    def full(decoded):  # every field, original opnames and jump targets included
        return ([(repr(i), i.original_opname, i.arg, i.jump_target) for i in decoded.instructions],
                decoded.index_of_offset, decoded.exception_table, decoded.handlers)

    root = pathlib.Path(repo)
    files = sorted(root.glob("capture/**/*.py")) + sorted(root.glob("tests/capture/**/*.py"))
    checked, differing = 0, []
    for path in files:
        for code in code_objects(compile(path.read_text(), str(path), "exec")):
            checked += 1
            direct, reference = decode_module.read_direct(code), decode_module.read_with_dis(code)
            same_decode = (full(decode_module._decode(code, decode_module.read_direct))
                           == full(decode_module._decode(code, decode_module.read_with_dis)))
            # Instructions built without __init__ (decode._built) equal, hash and print as built by it.
            decoded = decode_module._decode(code)
            rebuilt = [dataclasses.replace(inst) for inst in decoded.instructions]
            same_objects = (rebuilt == list(decoded.instructions)
                            and [hash(i) for i in rebuilt] == [hash(i) for i in decoded.instructions]
                            and [(repr(i), i.original_opname) for i in rebuilt]
                            == [(repr(i), i.original_opname) for i in decoded.instructions])
            if direct != reference or not same_decode or not same_objects:
                differing.append(f"{path.relative_to(root)}:{code.co_firstlineno} {code.co_name}")
    print(json.dumps({"checked": checked, "differing": differing}))
''')


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_direct_read_matches_dis(version):
    python = sys.executable if version == "%d.%d" % sys.version_info[:2] else _find_python(version)
    if python is None:
        pytest.skip(f"python{version} not installed")
    out = subprocess.run([python, "-c", SCRIPT, str(REPO)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["checked"] > 1000  # the files were found and compiled
    assert result["differing"] == []
