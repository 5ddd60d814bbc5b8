"""Find other CPython versions (pyenv) and make the `bytecode` package importable there."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile


def find_python(version: str) -> str | None:
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "which", f"python{version}"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    candidates.append(shutil.which(f"python{version}") or "")
    return next((c for c in candidates if c and os.path.exists(c)), None)


def bytecode_path_for(python: str) -> tuple[list[str] | None, str]:
    """Extra sys.path entries that make `import bytecode` work under `python`: none if it has
    the package; else a directory linking this interpreter's copy (bytecode is pure Python and
    supports 3.11-3.13). (None, reason) when neither works."""
    probe = "import bytecode, sys; sys.stdout.write(bytecode.__version__)"
    if subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return [], "installed"
    import bytecode
    shim = tempfile.mkdtemp(prefix="kiln-bytecode-shim-")
    os.symlink(os.path.dirname(bytecode.__file__), os.path.join(shim, "bytecode"))
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": shim})
    if result.returncode != 0:
        return None, f"the bytecode package does not import under {python}: {result.stderr.strip()[-200:]}"
    return [shim], f"linked bytecode {result.stdout}"
