"""The fuzzer's own parts: the generator, the comparison with eager, the worker's classification
of deaths and hangs, and the shrinker. (test_fuzz.py runs the fuzzer on Kiln.)"""
import random

import pytest
import torch

from fuzz.check import Outcome, close_to_reference, compare, compare_values
from fuzz.generate import Gen, Settings, generate
from fuzz.ops import OPS
from fuzz.program import Input, Program, Stmt, Var, run_statements
from fuzz.reasons import reason_class
from fuzz.runner import Pool
from fuzz.shrink import Shrinker, renumbered


def test_same_seed_same_program():
    assert generate(7).source() == generate(7).source()
    assert generate(7).source() != generate(8).source()


def test_programs_are_valid_eager_programs_most_of_the_time():
    raised = 0
    for seed in range(150):
        program = generate(seed)
        compile(program.source(), "<fuzz>", "exec")
        raised += run_statements(program)[1] is not None
    assert raised <= 15  # a few end in eager's own error on purpose (Kiln must raise it too)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_in_the_table_can_be_emitted(name):
    """Each template prints valid Python and runs eagerly on some operand: no dead table rows."""
    spec = OPS[name]
    for seed in range(60):
        g = Gen(seed, Settings())
        g.program()  # inputs and a few statements to pick operands from
        if g.raised:
            continue
        before = len(g.body)
        if g.add_statement(only=spec) and len(g.body) > before and not g.raised:
            return
    pytest.fail(f"{name}: never emitted")


def test_inputs_cover_layouts_and_special_values():
    sources = "\n".join(generate(s).source() for s in range(200))
    for text in (".permute(", "::2]", ".expand(", "[1:]", "reshape(())", "inf", "nan", "-0.0", "dtype=torch.bfloat16",
                 "dtype=torch.float16", "dtype=torch.bool", "dtype=torch.int32", "-2147483648", "3.4028234663852886e+38"):
        assert text in sources, text
    assert any("reshape(0" in s or ", 0)" in s for s in sources.split("def make_inputs"))


def _outcome(outputs, inputs=(), error=None):
    return Outcome(tuple(outputs) if error is None else None, list(inputs), error)


def test_compare_agrees_within_eager_tolerances_and_nan_positions():
    x = torch.tensor([1.0, float("nan"), float("inf")])
    assert compare(_outcome([x]), _outcome([x * (1 + 1e-7)])) is None


@pytest.mark.parametrize("got, kind", [
    (torch.tensor([1.0, 2.0, 3.5]), "values"),
    (torch.tensor([1.0, 2.0, float("nan")]), "values"),
    (torch.tensor([1.0, 2.0, -0.0]).double(), "dtype"),
    (torch.tensor([[1.0, 2.0, 3.0]]), "shape"),
])
def test_compare_finds_wrong_outputs(got, kind):
    mismatch = compare(_outcome([torch.tensor([1.0, 2.0, 3.0])]), _outcome([got]))
    assert mismatch is not None and (mismatch.cls, mismatch.kind) == ("WRONG", kind)


def test_tolerance_of_the_least_precise_dtype_on_the_way():
    """A float32 intermediate cast to float64 keeps its float32 rounding: float32's tolerance."""
    e = torch.tensor([3.4], dtype=torch.float64)
    g = e + 1e-6  # within float32's tolerance, not float64's
    assert compare_values(g, e) is not None
    assert compare_values(g, e, torch.float32) is None


def test_float64_reference_forgives_amplified_rounding_but_not_nan_or_inf():
    """fmod after a one-ulp difference: far off in relative terms, as close to float64 as eager."""
    ref = torch.tensor([0.14900, 2.0], dtype=torch.float64)
    eager = torch.tensor([0.14903, 2.0])
    kiln = torch.tensor([0.14906, 2.0])
    assert compare_values(kiln, eager) is not None
    assert close_to_reference(kiln, eager, ref, torch.float32)
    assert not close_to_reference(torch.tensor([0.5, 2.0]), eager, ref, torch.float32)
    assert not close_to_reference(torch.tensor([0.14906, float("inf")]), eager, ref, torch.float32)
    assert not close_to_reference(torch.tensor([float("nan"), 2.0]), eager, ref, torch.float32)


def test_compare_integers_exactly():
    assert compare_values(torch.tensor([2**40 + 1]), torch.tensor([2**40])) is not None


def test_compare_finds_a_wrong_input_after_the_call():
    out = torch.zeros(2)
    mismatch = compare(_outcome([out], [torch.ones(2)]), _outcome([out], [torch.tensor([1.0, 2.0])]))
    assert (mismatch.cls, mismatch.kind) == ("WRONG", "input")


def test_compare_finds_different_aliasing():
    x = torch.ones(4)
    eager = _outcome([x[1:]], [x])
    y = torch.ones(4)
    assert (compare(eager, _outcome([y[1:].clone()], [y])).kind) == "alias"
    z = torch.ones(4)
    assert compare(eager, _outcome([z[1:]], [z])) is None


def test_compare_exceptions():
    eager_raises = _outcome([], error=RuntimeError("ZeroDivisionError"))
    assert compare(eager_raises, _outcome([], error=RuntimeError("ZeroDivisionError"))) is None
    assert compare(eager_raises, _outcome([torch.zeros(1)])).kind == "no_error"
    assert compare(eager_raises, _outcome([], error=ZeroDivisionError())).cls == "CRASH"
    assert compare(_outcome([torch.zeros(1)]), _outcome([], error=AssertionError("internal"))).cls == "CRASH"


def test_fallback_reasons_are_grouped():
    bf16 = "kiln: could not compile this graph (UnsupportedGraph: dtype torch.bfloat16 is not supported by the C++ backend yet); running it eagerly"
    assert reason_class(bf16) == "float16/bfloat16 on this target"
    a = reason_class("kiln: could not compile this graph (PrimMetaError: kiln.reshape: cannot reshape [12] to [])")
    b = reason_class("kiln: could not compile this graph (PrimMetaError: kiln.reshape: cannot reshape [7] to [])")
    assert a == b and a.startswith("PrimMetaError")


def _case(case_id, body):
    source = ("import torch\n\n\ndef make_inputs():\n    return [torch.ones(2)]\n\n\n"
              f"def fn(x0):\n    {body}\n    return (x0,)\n")
    return {"id": case_id, "source": source}


def test_a_worker_that_dies_or_hangs_is_dead_and_the_next_case_runs():
    with Pool("capture", "cpp", timeout=3) as pool:
        died = pool.run_one(_case(1, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"))
        assert (died["class"], died["kind"]) == ("DEAD", "killed by SIGSEGV")
        fine = pool.run_one(_case(2, "x0 = x0 + 1"))
        assert fine["class"] == "OK", fine
        hung = pool.run_one(_case(3, "import time; time.sleep(60)"))
        assert (hung["class"], hung["kind"]) == ("DEAD", "timeout")
        assert pool.run_one(_case(4, "x0 = x0 * 2"))["class"] == "OK"


def test_shrinker_keeps_the_failure_and_drops_the_rest():
    """A fake runner: WRONG while the program returns an int32 INT_MIN divided by -1."""
    program = generate(3)
    x = Input("x99", "tensor", "int32", (3, 2), (-2**31, 5, 1, 2, 3, 4))
    stmt = Stmt("floordiv_s", (("a", Var("x99")), ("c", -1)), ("v99",))
    program = program.replace(inputs=program.inputs + (x,), body=program.body + (stmt,),
                              outputs=program.outputs + ("v99",))

    def run(p):
        env, error, _ = run_statements(p)
        bad = any(s.op == "floordiv_s" and s.params["c"] == -1 and s.outs[0] in p.outputs
                  and (env[s.outs[0]] == -2**31).any() for s in p.body) if error is None else False
        return {"class": "WRONG" if bad else "OK", "kind": "values" if bad else "", "detail": ""}

    small = Shrinker(program, run).shrink()
    assert len(small.body) == 1 and len(small.inputs) == 1 and small.outputs == ("v0",)
    assert small.inputs[0].shape in ((1,), (1, 1)) and small.inputs[0].values[0] == -2**31
    assert run(small)["class"] == "WRONG"
    assert renumbered(small) == small


def test_generator_uses_its_random_source_only():
    """Programs depend on the seed alone (not on global random state), so seeds reproduce."""
    random.seed(1)
    a = generate(11).source()
    random.seed(2)
    torch.manual_seed(5)
    assert generate(11).source() == a
