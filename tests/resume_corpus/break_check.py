"""Break entries built from real frames: for every normalised instruction of every function in
functions.CASES, snapshot the frame just before it, describe the stack and locals as a
BreakPlan (a mix of graph outputs, parameters and constants, plus a side effect), run the
break entry and compare with the original call. Torch-free, like resume_cases."""
from __future__ import annotations

from kiln.capture.bytecode import decode
from kiln.capture.bytecode.blocks import active_blocks
from kiln.capture.bytecode.break_entry import BreakPlan, build_break_entry
from kiln.capture.bytecode.errors import BytecodeError, CannotResume
from kiln.capture.bytecode.resume import check_frame_point, facts_of
from kiln.capture.bytecode.flow import Flow
from kiln.capture.bytecode.groups import group_at
from kiln.capture.bytecode.layout import Call, Constant, GraphOutput, Local, Null, SlotKind, WithExit

from . import probe
from .functions import CASES
from .resume_check import outcome


def fake_graph(*inputs):
    """Stands in for a compiled graph: returns its inputs (so outputs keep their identity)."""
    return inputs


class _PlanMaker:
    """Spreads the snapshot's values over graph outputs, parameters and constants."""

    def __init__(self):
        self.params: list[str] = []
        self.param_values: list = []
        self.graph_inputs: list = []
        self.count = 0

    def value(self, obj):
        self.count += 1
        choice = self.count % 3
        if choice == 2:
            return Constant(obj)
        name = f"p{len(self.params)}"
        self.params.append(name)
        self.param_values.append(obj)
        if choice == 1:
            return Local(name)
        self.graph_inputs.append(Local(name))
        return GraphOutput(len(self.graph_inputs) - 1)


def plan_from_snapshot(fn, offset: int, snap, effects_log: list) -> tuple[BreakPlan, list]:
    maker = _PlanMaker()
    stack = []
    flow = Flow(fn.__code__)
    active = active_blocks(flow, group_at(flow, offset).start).with_slots
    for slot, (value, kind) in enumerate(zip(snap.stack, snap.kinds())):
        if kind is SlotKind.NULL:
            stack.append(Null())
        elif kind is SlotKind.WITH and slot in active:  # (an exit being called is a plain value)
            stack.append(WithExit(maker.value(value.__self__)))
        else:
            stack.append(maker.value(value))
    local_items = tuple((name, maker.value(value)) for name, value in snap.locals.items())
    cells = tuple(maker.value(cell) for cell in snap.cells)
    plan = BreakPlan(fn.__code__, offset, tuple(maker.params), tuple(stack), local_items,
                     graph=fake_graph, graph_inputs=tuple(maker.graph_inputs),
                     effects=(Call(Constant(effects_log.append), (Constant("effect"),)),), cells=cells)
    return plan, maker.param_values


def check_case(name: str, hits=(1, 2)) -> dict:
    fn, make_args = CASES[name]
    args, kwargs = make_args()
    expected = outcome(lambda: (fn(*args, **kwargs), args, kwargs))
    facts = facts_of(fn.__code__)
    flow = facts.flow
    checked, failures, unsupported = 0, [], []
    for instruction in decode(fn).instructions:
        try:
            group = group_at(flow, instruction.offset)
            check_frame_point(facts, group.start)  # (before probing: the probe needs it too)
        except (CannotResume, BytecodeError) as error:
            unsupported.append(str(error))
            continue
        for hit in hits:
            args, kwargs = make_args()
            snap = probe.snapshot(fn, group.start, args, kwargs, hit=hit)
            if snap is None:
                continue
            effects_log: list = []
            plan, values = plan_from_snapshot(fn, instruction.offset, snap, effects_log)
            try:
                entry = build_break_entry(plan, fn.__globals__, fn.__closure__)
            except CannotResume as error:
                unsupported.append(f"{instruction.offset}: {error.reason}")
                continue
            got = outcome(lambda: (entry(*values), snap.args, snap.kwargs))
            checked += 1
            if repr(got) != repr(expected) or effects_log != ["effect"]:
                failures.append(f"{name} break at {instruction!r} (arrival {hit}): got {got!r}, "
                                f"expected {expected!r}, effects {effects_log}; {plan!r}")
    return {"checked": checked, "failures": failures, "unsupported": sorted(set(unsupported))}


def run_all() -> dict:
    return {name: check_case(name) for name in CASES}


