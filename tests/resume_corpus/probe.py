"""Snapshots of a real CPython frame's value stack and locals at an instruction offset, to test
resume functions against the interpreter itself. Torch-free: also run on 3.12/3.13.

`snapshot(fn, offset, args, hit=k)` runs a probed copy of `fn` that, the k-th time it reaches
`offset`, stores every stack slot into a local (a NULL slot leaves the local unbound), records
deep copies of the values (with the call's arguments, so their identities stay consistent),
pushes them back (PUSH_NULL for the unbound ones) and aborts the call with a BaseException,
which unwinds through the frame's own `with`/`finally` handlers as usual (the copies are
taken first because those handlers may mutate the originals). The frame's cells (one per
co_cellvars name) are recorded as the cell objects themselves, not copied: the functions the
frame made hold them, and a resume function gets them as its closure.
"""
from __future__ import annotations

import copy
import sys
import types
from dataclasses import dataclass

from bytecode import Bytecode, CellVar, Instr, Label

from kiln.capture.bytecode import emit
from kiln.capture.bytecode.assemble import instruction_positions
from kiln.capture.bytecode.layout import SlotKind
from kiln.capture.bytecode.resume import facts_of

NULL = type("NULL", (), {"__repr__": lambda self: "NULL", "__deepcopy__": lambda self, memo: self})()


class Abort(BaseException):
    """Raised by the probe after recording; BaseException so `except Exception` lets it pass."""


@dataclass
class Snapshot:
    stack: list          # values bottom first; NULL for a NULL slot
    locals: dict         # bound fast locals
    args: tuple          # the call's arguments, copied together with the values above
    kwargs: dict
    cells: list = None   # the frame's cells (co_cellvars order), the real objects

    def kinds(self) -> tuple[SlotKind, ...]:
        return tuple(_kind(value) for value in self.stack)

    def stack_args(self) -> list:
        """The resume function's stack arguments: values, with a `with` slot's context object."""
        return [value.__self__ if _kind(value) is SlotKind.WITH else value
                for value in self.stack if value is not NULL]


def _kind(value) -> SlotKind:
    if value is NULL:
        return SlotKind.NULL
    if getattr(value, "__name__", None) == "__exit__" and hasattr(value, "__self__"):
        return SlotKind.WITH
    return SlotKind.VALUE


class _Recorder:
    def __init__(self, code: types.CodeType, depth: int, hit: int):
        self.code, self.depth, self.hit = code, depth, hit
        self.call_args: tuple = ((), {})
        self.hits = 0
        self.snapshot: Snapshot | None = None

    def should_record(self) -> bool:
        self.hits += 1
        return self.hits == self.hit

    def record(self) -> None:
        try:  # must not raise: the stack is below its handlers' depth while this runs
            frame_locals = sys._getframe(1).f_locals
            stack = [frame_locals.get(f"__probe{i}", NULL) for i in range(self.depth)]
            names = set(self.code.co_varnames)
            bound = {name: value for name, value in frame_locals.items() if name in names}
            args, kwargs = self.call_args
            cells = [frame_locals[f"__probe_cell_{name}"] for name in self.code.co_cellvars]
            try:
                stack, bound, args, kwargs = copy.deepcopy((stack, bound, args, kwargs))
            except TypeError:  # e.g. a generator on the stack: keep the originals
                pass
            self.snapshot = Snapshot(stack, bound, args, kwargs, cells)
        except BaseException as error:  # pragma: no cover - reported by the caller
            self.snapshot = error

    def is_bound(self, index: int) -> bool:
        return f"__probe{index}" in sys._getframe(1).f_locals

    def abort(self) -> None:
        raise Abort()


def _call_method(method, *args) -> list:
    return emit.call_function(emit.load_const(method), [emit.load_const(a) for a in args])


_PROBED: dict = {}


def probed_function(fn: types.FunctionType, offset: int, hit: int) -> tuple[types.FunctionType, _Recorder]:
    """The probed copy of `fn` for `offset` (built once; re-armed for the `hit`-th arrival)."""
    key = (fn, offset)
    if key not in _PROBED:
        _PROBED[key] = _build_probe(fn, offset)
    function, recorder = _PROBED[key]
    recorder.hit, recorder.hits, recorder.snapshot = hit, 0, None
    return function, recorder


def _build_probe(fn: types.FunctionType, offset: int) -> tuple[types.FunctionType, _Recorder]:
    code = fn.__code__
    hit = 1
    facts = facts_of(code)
    depth = facts.stack.depth_at(offset)
    recorder = _Recorder(code, depth, hit)
    body = Bytecode.from_code(code, conserve_exception_block_stackdepth=True)
    skip = Label()
    probe = _call_method(recorder.should_record) + emit.pop_jump_if("false", skip)
    for index in reversed(range(depth)):
        probe += emit.store_fast(f"__probe{index}")
    for name in code.co_cellvars:  # the cell itself (3.13 spells LOAD_CLOSURE as LOAD_FAST of the cell)
        probe.append(Instr("LOAD_FAST" if emit.VERSION >= (3, 13) else "LOAD_CLOSURE", CellVar(name)))
        probe += emit.store_fast(f"__probe_cell_{name}")
    probe += _call_method(recorder.record) + emit.pop_top()
    for index in range(depth):
        is_null, done = Label(), Label()
        probe += _call_method(recorder.is_bound, index) + emit.pop_jump_if("false", is_null)
        probe += emit.load_fast(f"__probe{index}") + emit.jump_forward(done)
        probe += [is_null] + emit.push_null() + [done]
    probe += _call_method(recorder.abort) + emit.pop_top() + [skip]
    emit.at_line(probe, facts.flow.step_at(offset).lineno)
    position = instruction_positions(body, facts.flow)[offset]
    body[position:position] = probe
    # Not verified: the probe holds the stack in locals inside exception regions, which is only
    # safe because record() and is_bound() cannot raise. Test-only code.
    probed = body.to_code(compute_exception_stack_depths=False)
    function = types.FunctionType(probed, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    function.__kwdefaults__ = fn.__kwdefaults__
    return function, recorder


def snapshot(fn, offset: int, args=(), kwargs=None, hit: int = 1) -> Snapshot | None:
    """The frame's stack and locals at the `hit`-th arrival at `offset`, or None if the call
    returned (or raised) before getting there."""
    function, recorder = probed_function(fn, offset, hit)
    recorder.call_args = (args, kwargs or {})
    try:
        function(*args, **(kwargs or {}))
    except Abort:
        pass
    except Exception:
        pass
    if isinstance(recorder.snapshot, BaseException):
        raise recorder.snapshot
    return recorder.snapshot
