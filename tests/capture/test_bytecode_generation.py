"""The bytecode-generation layer's own guarantees: the verifier rejects malformed code objects
before they can run, resume functions are cached and take only live locals, unsupported
frames raise CannotResume, and generated code is logged as dis text."""
import dis
import logging
import sys
import types

import pytest
from bytecode import Bytecode, Instr, Label, TryBegin, TryEnd

from kiln.capture.bytecode import emit
from kiln.capture.bytecode.assemble import assemble, render
from kiln.capture.bytecode.errors import BytecodeError, CannotResume
from kiln.capture.bytecode.layout import (Build, Call, Constant, GraphOutput, Local, Null, SlotKind,
                                     WithExit)
from kiln.capture.bytecode.resume import facts_of, resume_code, resume_points
from kiln.capture.bytecode.verify import analyse, verify


def _code(instructions, stacksize=8, argnames=()) -> types.CodeType:
    """A code object assembled with a given stacksize and no checks at all (what a buggy
    generator could produce)."""
    bytecode = Bytecode(emit.resume_start() + instructions)
    bytecode.argnames = list(argnames)
    bytecode.argcount = len(argnames)
    return bytecode.to_code(stacksize=stacksize, check_pre_and_post=False,
                            compute_exception_stack_depths=False)


def _load_attr(name):
    return Instr("LOAD_ATTR", name if emit.HAS_PRECALL else (False, name))


def test_verifier_accepts_well_formed_code():
    code = _code(emit.load_fast("x") + emit.return_value(), stacksize=1, argnames=("x",))
    assert verify(code).max_depth == 1
    assert types.FunctionType(code, {})(5) == 5


def test_verifier_rejects_reading_an_empty_stack():
    code = _code([_load_attr("real")] + emit.return_value())  # LOAD_ATTR with nothing to read
    with pytest.raises(BytecodeError, match="LOAD_ATTR at offset .* needs 1 stack items, has 0"):
        verify(code)


def test_verifier_rejects_paths_that_disagree_on_depth():
    join = Label()
    code = _code(emit.load_fast("x") + emit.pop_jump_if("true", join) + emit.load_const(1)
                 + [join] + emit.load_const(2) + emit.return_value(), argnames=("x",))
    with pytest.raises(BytecodeError, match="reached with stack depth"):
        verify(code)


def test_verifier_rejects_falling_off_the_end():
    code = _code(emit.load_const(1) + emit.pop_top())
    with pytest.raises(BytecodeError, match="falls off the end"):
        verify(code)


def test_verifier_rejects_a_too_small_stacksize():
    code = _code(emit.load_const(1) + emit.load_const(2) + emit.build_tuple(2) + emit.return_value(),
                 stacksize=1)
    with pytest.raises(BytecodeError, match="needs stack depth 2, co_stacksize is 1"):
        verify(code)


def test_verifier_rejects_an_exception_depth_above_the_stack():
    handler = Label()
    region = TryBegin(handler, push_lasti=False, stack_depth=2)  # claims 2 items that are not there
    code = _code([region] + emit.load_const(None) + emit.return_value() + [TryEnd(region), handler]
                 + emit.reraise())
    with pytest.raises(BytecodeError, match="below its exception handler's depth 2"):
        verify(code)


def test_assemble_turns_bytecode_errors_into_bytecode_error():
    bad = Bytecode(emit.resume_start() + emit.pop_top() + emit.load_const(None) + emit.return_value())
    with pytest.raises(BytecodeError, match="assembling"):
        assemble(bad)


def test_analysis_matches_cpython_stacksize_on_real_functions():
    # The verifier's own depth count must agree with the compiler's (it is used when bytecode's is low).
    import ast
    import inspect
    import json.decoder
    for module in (json.decoder, inspect, ast):
        top = compile(inspect.getsource(module), module.__file__, "exec")
        stack = [top]
        while stack:
            code = stack.pop()
            stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            if code.co_flags & 0x3A0:  # generators and coroutines are not analysed
                continue
            assert analyse(code).max_depth <= code.co_stacksize, code.co_name


def loop(n, unused):
    total = 0
    for i in range(n):
        total = total + i
    return total


def test_resume_functions_are_cached_and_take_only_live_locals():
    offsets = resume_points(loop.__code__)
    loop_body = [o for o in offsets if facts_of(loop.__code__).stack.depth_at(o) == 1][1]
    first = resume_code(loop.__code__, loop_body, (SlotKind.VALUE,), ["n", "unused", "total", "i"])
    again = resume_code(loop.__code__, loop_body, (SlotKind.VALUE,), ["total", "i", "unused", "n"])
    assert first is again
    assert "unused" not in first.local_names and "total" in first.local_names
    assert first.arg_names[0] == "__stack0"
    assert first.code.co_name == f"resume_at_{loop_body}"


def test_resume_layout_must_match_the_frame():
    offset = resume_points(loop.__code__)[-1]
    depth = facts_of(loop.__code__).stack.depth_at(offset)
    with pytest.raises(BytecodeError, match="layout has"):
        resume_code(loop.__code__, offset, (SlotKind.VALUE,) * (depth + 1), ["total"])


def generator(n):
    yield n


def makes_closure(n):
    return lambda: n


def test_generators_cannot_resume():
    with pytest.raises(CannotResume, match="generator"):
        resume_points(generator.__code__)


def closure_counter(start, step):
    total = start

    def add():
        nonlocal total
        total = total + step

    add()
    add()
    return total


def test_cell_variables_become_free_variables_of_the_resume_code():
    code = closure_counter.__code__
    # resume at the second `add()` statement: `add` is the only live local, the cells come in the closure
    second_add = code.co_firstlineno + 8
    offset = min(i.offset for i in dis.get_instructions(code) if i.positions.lineno == second_add)
    resume = resume_code(code, offset, (), ["start", "step", "total", "add"])
    assert resume.cell_names == ("step", "total") and resume.local_names == ("add",)
    assert resume.code.co_cellvars == () and resume.code.co_freevars == ("step", "total")
    assert "MAKE_CELL" not in render(resume.code)
    step, total = types.CellType(10), types.CellType(1)
    add = types.FunctionType(code.co_consts[1], {}, "add", None, (step, total))
    add()  # the frame's first add(), run before the break
    function = resume.make_function({}, (step, total))
    assert function(add) == 21 == closure_counter(1, 10)
    assert total.cell_contents == 21  # the resume function wrote the caller's cell
    with pytest.raises(BytecodeError, match="needs 2 closure cells"):
        resume.make_function({}, (step,))


def closure_comprehension(xs):
    return [lambda: x for x in xs]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.11 runs comprehensions in their own code object")
def test_comprehension_cells_cannot_resume():
    offset = resume_points(closure_comprehension.__code__)[0]
    with pytest.raises(CannotResume, match="comprehension whose variable a closure captures"):
        resume_code(closure_comprehension.__code__, offset, (), ["xs"])


def handler_code(x):
    try:
        return 1 // x
    except ZeroDivisionError:
        return -1


def test_no_resume_inside_an_exception_handler():
    facts = facts_of(handler_code.__code__)
    inside = [o for o, state in facts.stack.states.items() if state.in_handler]
    assert inside and not set(inside) & set(resume_points(handler_code.__code__))


def test_generated_code_is_logged_as_dis_text(caplog):
    offsets = resume_points(makes_no_cells.__code__)
    with caplog.at_level(logging.DEBUG, logger="kiln.bytecode"):
        resume = resume_code(makes_no_cells.__code__, offsets[-1],
                             (SlotKind.VALUE,) * facts_of(makes_no_cells.__code__).stack.depth_at(offsets[-1]),
                             ["x"])
    assert f"ResumeCode(makes_no_cells at {offsets[-1]}" in caplog.text and "JUMP_FORWARD" in caplog.text
    assert "JUMP_FORWARD" in render(resume.code)


def makes_no_cells(x):
    return [x, x + 1]


def test_layout_reprs_are_readable():
    items = [GraphOutput(0), Constant([1, 2]), Local("x"), Null(), WithExit(Local("ctx")),
             Build("tuple", (Local("x"), GraphOutput(1))), Call(Constant(len), (Local("x"),))]
    assert repr(items) == ("[GraphOutput(0), Constant([1, 2]), Local(x), Null(), WithExit(Local(ctx)), "
                           "Build(tuple, [Local(x), GraphOutput(1)]), Call(Constant(<built-in function len>), "
                           "[Local(x)])]")
    assert repr(list(SlotKind)) == "[VALUE, NULL, WITH]"


def test_zero_argument_super_resume_takes_self_first():
    # super() reads the frame's first slot (3.11's call; 3.12+'s LOAD_SUPER_ATTR on its generic
    # path), so the resume code takes `self` first, and cannot resume without it.
    class Base:
        def f(self):
            return 1

    class Child(Base):
        def f(self):
            return super().f() + 1

    code = Child.f.__code__
    point = resume_points(code)[0]
    resume = resume_code(code, point, (), ["self"])
    assert resume.leading == ("self",)
    assert resume.code.co_varnames[0] == "self"
    with pytest.raises(CannotResume, match="super"):
        resume_code(code, point, (), [])
