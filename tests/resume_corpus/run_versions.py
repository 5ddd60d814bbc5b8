"""Run the resume and break checks under another Python (3.12/3.13, where torch is missing).

    python run_versions.py REPO [EXTRA_SYS_PATH]  ->  JSON {"emit": ..., "resume": ..., "break": ...}

kiln/__init__.py and capture/__init__.py import torch, so `kiln` and `kiln.capture` are registered
as bare namespaces over the source directories: only the torch-free kiln.capture.bytecode package is
imported from them.
"""
import json
import sys
import types

repo = sys.argv[1]
sys.path[:0] = [repo + "/tests", *sys.argv[2:]]
for name, folder in (("kiln", "/kiln"), ("kiln.capture", "/capture")):
    package = types.ModuleType(name)
    package.__path__ = [repo + folder]
    sys.modules[name] = package

from resume_corpus import break_check, emit_check, resume_check  # noqa: E402

print(json.dumps({"version": list(sys.version_info[:2]),
                  "emit": {"helpers": emit_check.check()},
                  "resume": resume_check.run_all(), "break": break_check.run_all()}))
