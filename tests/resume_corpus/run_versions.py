"""Run the resume and break checks under another Python (3.12/3.13, where torch is missing).

    python run_versions.py REPO [EXTRA_SYS_PATH]  ->  JSON {"emit": ..., "resume": ..., "break": ...}

capture/__init__.py imports torch, so `capture` is registered as a bare namespace over the
source directory: only the torch-free capture.bytecode package is imported from it.
"""
import json
import sys
import types

repo = sys.argv[1]
sys.path[:0] = [repo + "/tests", *sys.argv[2:]]
package = types.ModuleType("capture")
package.__path__ = [repo + "/capture"]
sys.modules["capture"] = package

from resume_corpus import break_check, emit_check, resume_check  # noqa: E402

print(json.dumps({"version": list(sys.version_info[:2]),
                  "emit": {"helpers": emit_check.check()},
                  "resume": resume_check.run_all(), "break": break_check.run_all()}))
