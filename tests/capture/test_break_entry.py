"""Break entries built from hand-written plans, as the tracer will build them: a compiled graph
(here a Python stand-in), an unsupported call inside `torch.no_grad()`, a data-dependent `if`
on a tensor with both branches resumed, side effects replayed before the unsupported code."""
import torch

import pytest

from kiln.capture.bytecode import decode, emit
from kiln.capture.bytecode.break_entry import BreakPlan, build_break_entry
from kiln.capture.bytecode.errors import BytecodeError, CannotResume
from kiln.capture.bytecode.layout import Build, Call, Constant, GraphOutput, Local, Null, WithExit

SEEN = []


def sink(value):
    """Stands in for print/logging/a C extension: something capture cannot trace."""
    SEEN.append(value)
    return None


def call_offset(fn, callee_name: str) -> int:
    """Offset of the normalised CALL of global `callee_name` (the one the tracer would break at)."""
    instructions = decode(fn).instructions
    start = next(i for i, inst in enumerate(instructions)
                 if inst.opname == "LOAD_GLOBAL" and inst.argval == callee_name)
    pending = 0  # calls started after the callee's, whose CALL comes first
    for inst in instructions[start + 1:]:
        if (inst.opname == "LOAD_GLOBAL" and inst.push_null) or (inst.opname == "LOAD_ATTR" and inst.method):
            pending += 1
        elif inst.opname == "CALL":
            if pending == 0:
                return inst.offset
            pending -= 1
    raise AssertionError(f"no call of {callee_name}")


def callable_slots(function) -> list:
    """[NULL, function] or [function, NULL]: CPython's order for a plain call on this version."""
    return [Constant(function), Null()] if emit.NULL_AFTER_CALLABLE else [Null(), Constant(function)]


def under_no_grad(x):
    y = x * 2
    with torch.no_grad():
        z = y + 1
        sink(z.sum())
        w = z * 3
    return w, w.requires_grad, torch.is_grad_enabled()


def graph_before_sink(x):
    """What capture would compile for under_no_grad up to the break: returns y, z, z.sum()."""
    y = x * 2
    with torch.no_grad():
        z = y + 1
        return y, z, z.sum()


def no_grad_plan(context) -> BreakPlan:
    return BreakPlan(
        under_no_grad.__code__, call_offset(under_no_grad, "sink"), params=("x",),
        stack=(WithExit(Constant(context)), *callable_slots(sink), GraphOutput(2)),
        locals=(("x", Local("x")), ("y", GraphOutput(0)), ("z", GraphOutput(1))),
        graph=graph_before_sink, graph_inputs=(Local("x"),))


def test_break_inside_no_grad_matches_eager():
    SEEN.clear()
    x = torch.randn(3, requires_grad=True)
    expected = under_no_grad(x)
    entry = build_break_entry(no_grad_plan(torch.no_grad()), under_no_grad.__globals__)
    got = entry(x)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:] == (False, True)
    assert len(SEEN) == 2 and torch.equal(SEEN[0], SEEN[1])
    assert [s.how for s in entry.successors] == ["next"]
    assert entry.successors[0].resume.stack[0].name == "WITH"


def test_exception_in_the_unsupported_call_exits_the_with_block():
    def boom(value):
        raise RuntimeError("boom")

    plan = no_grad_plan(torch.no_grad())
    plan = BreakPlan(plan.code, plan.offset, plan.params,
                     (plan.stack[0], *callable_slots(boom), plan.stack[-1]), plan.locals,
                     plan.graph, plan.graph_inputs)
    entry = build_break_entry(plan, under_no_grad.__globals__)
    with pytest.raises(RuntimeError, match="boom"):
        entry(torch.randn(3, requires_grad=True))
    assert torch.is_grad_enabled()


def data_dependent(x):
    y = x.sin()
    if y.sum() > 0:
        return y * 2
    return y - 1


def test_tensor_condition_resumes_both_branches():
    condition = next(i for i in decode(data_dependent).instructions
                     if i.opname == "TO_BOOL" or i.opname.startswith("POP_JUMP"))
    plan = BreakPlan(data_dependent.__code__, condition.offset, params=("x",),
                     stack=(GraphOutput(1),),
                     locals=(("x", Local("x")), ("y", GraphOutput(0))),
                     graph=lambda x: (x.sin(), x.sin().sum() > 0), graph_inputs=(Local("x"),))
    compiled_calls = []

    def wrap(function):  # what capture.compile would do to each resume function
        def wrapped(*args):
            compiled_calls.append(function.__name__)
            return function(*args)
        return wrapped

    entry = build_break_entry(plan, data_dependent.__globals__, wrap_resume=wrap)
    assert sorted(s.how for s in entry.successors) == ["jump", "next"]
    for x in (torch.full((3,), 0.5), torch.full((3,), -0.5)):
        torch.testing.assert_close(entry(x), data_dependent(x))
    assert len(set(compiled_calls)) == 2  # each branch went through its own resume function


def with_side_effects(items, x):
    items.append(x)
    sink((len(items), items))
    return items


def test_effects_run_first_and_shared_values_are_built_once():
    SEEN.clear()
    built = []

    def build_list(*values):
        built.append(values)
        return list(values)

    def replay_append(items, value):  # a side effect the graph recorded
        SEEN.append(("replayed", len(items)))
        items.append(value)

    source = Local("source")
    rebuilt = Call(Constant(build_list), (Local("first"),))  # a fresh object, used three times
    plan = BreakPlan(with_side_effects.__code__, call_offset(with_side_effects, "sink"),
                     params=("first", "x", "source"),
                     stack=(*callable_slots(sink), Build("tuple", (Call(Constant(len), (rebuilt,)), rebuilt))),
                     locals=(("items", rebuilt), ("x", Local("x"))),
                     effects=(Call(Constant(replay_append), (source, Local("x"))),))
    entry = build_break_entry(plan, with_side_effects.__globals__)
    source_list = []
    result = entry(0, 7, source_list)
    assert built == [(0,)] and source_list == [7]
    assert SEEN == [("replayed", 0), (1, result)] and SEEN[1][1] is result and result == [0]


def test_plans_are_checked():
    offset = call_offset(with_side_effects, "sink")
    with pytest.raises(BytecodeError, match="not a parameter"):
        build_break_entry(BreakPlan(with_side_effects.__code__, offset, (), (*callable_slots(sink), Local("x")),
                                    ()), {})
    with pytest.raises(BytecodeError, match="no graph"):
        build_break_entry(BreakPlan(with_side_effects.__code__, offset, (), (*callable_slots(sink), GraphOutput(0)),
                                    ()), {})
    with pytest.raises(BytecodeError, match="plan has 2 stack items"):
        build_break_entry(BreakPlan(with_side_effects.__code__, offset, (), (*callable_slots(sink),), ()), {})
    with pytest.raises(BytecodeError, match="callable slot"):  # NULL on the wrong side for this version
        build_break_entry(BreakPlan(with_side_effects.__code__, offset, (),
                                    (*reversed(callable_slots(sink)), Constant(1)), ()), {})
    with pytest.raises(BytecodeError, match="with-exits"):  # no with block is active there
        build_break_entry(BreakPlan(with_side_effects.__code__, offset, ("c",),
                                    (WithExit(Local("c")), *callable_slots(sink)), ()), {})


def test_unbreakable_instructions_raise_cannot_resume():
    for_iter = next(i for i in decode(graph_loop).instructions if i.opname == "FOR_ITER")
    with pytest.raises(CannotResume, match="FOR_ITER"):
        build_break_entry(BreakPlan(graph_loop.__code__, for_iter.offset, ("n",), (Local("n"),),
                                    (("n", Local("n")),)), {})


def graph_loop(n):
    for i in n:
        sink(i)


def returns_both(a, b):
    sink(a)
    return a, b


def test_equal_mutable_constants_keep_their_identity():
    first, second = [1], [1]  # equal, distinct: must not be merged into one constant
    plan = BreakPlan(returns_both.__code__, call_offset(returns_both, "sink"), params=(),
                     stack=(*callable_slots(sink), Constant(first)),
                     locals=(("a", Constant(first)), ("b", Constant(second))))
    a, b = build_break_entry(plan, returns_both.__globals__)()
    assert a is first and b is second
