"""`import` inside the traced code. Only modules already imported are supported: importing one
then has no side effect and gives the module in sys.modules (a first import runs the module's
code, which capture cannot trace)."""
from __future__ import annotations

import sys

from ..exc import Unsupported
from ..sources import ImportSource
from ..variables.builder import wrap_value
from .table import handles


def _imported(name: str):
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if module is None or getattr(spec, "_initializing", False):
        raise Unsupported(f"import of {name!r}, not imported yet (a first import runs the module's code)")
    return module


@handles("IMPORT_NAME")
def import_name(tx, inst):
    fromlist = tx.pop().as_python_constant()
    level = tx.pop().as_python_constant()
    name = inst.argval
    if level != 0:
        raise Unsupported(f"relative import of {name!r}")
    module = _imported(name)  # the named module itself must be loaded, its parents are then too
    if not fromlist:
        module = _imported(name.split(".")[0])
    fromlist = tuple(fromlist) if fromlist else None
    # A loaded module's import gives the same object each time: no guard (as for torch's own modules).
    tx.push(wrap_value(tx, module, ImportSource(name, fromlist), guard=False))


@handles("IMPORT_FROM")
def import_from(tx, inst):
    tx.push(tx.stack[-1].var_getattr(tx, inst.argval))
