"""Deletes of attributes, and global stores and deletes: Python side effects, recorded in
`tx.output.side_effects` and replayed after the graph runs (see capture/side_effects.py).
Item and attribute assignment (STORE_SUBSCR, STORE_ATTR) are in opcodes/containers.py and
opcodes/functions.py: they call the container's `setitem` / the object's `store_attr`, which
record the same way (tensor item assignment is an `operator.setitem` op in the graph)."""
from __future__ import annotations

from ..exc import TorchOpError
from ..guards import Guard
from ..sources import GetItemSource, GlobalsDictSource
from .table import handles


@handles("DELETE_ATTR")
def delete_attr(tx, inst):
    tx.pop().delete_attr(tx, inst.argval)


def _globals_dict_source(tx, name: str):
    # The frame's own globals are `G`; an inlined callee from another module writes to
    # `<function source>.__globals__`, the base of the source its reads use.
    source = tx.global_source(name)
    return source.base if isinstance(source, GetItemSource) else GlobalsDictSource()


@handles("STORE_GLOBAL")
def store_global(tx, inst):
    value = tx.pop()
    tx.output.side_effects.write(tx.f_globals, _globals_dict_source(tx, inst.argval), inst.argval, value,
                                 kind="item")


@handles("DELETE_GLOBAL")
def delete_global(tx, inst):
    name = inst.argval
    dict_source = _globals_dict_source(tx, name)
    written = tx.output.side_effects.read(tx.f_globals, name)
    if (written.value is None) if written is not None else name not in tx.f_globals:
        raise TorchOpError(f"del {name}", NameError(f"name {name!r} is not defined"))
    if written is None:  # the replayed `del` needs the name to exist on later calls too
        tx.output.guards.add(Guard(dict_source, "HAS_KEY", name, noun="globals"))
    tx.output.side_effects.write(tx.f_globals, dict_source, name, None, kind="item")
