"""Corpus: straight-line functions (tests/capture/corpus/basics.py), plus what the graph,
its inputs and the records look like for them."""
import operator

import pytest
import torch

from kiln import capture
from corpus import run_case
from corpus import basics
from corpus.basics import CASES, globals_read, pointwise_mix, return_input_unchanged, return_single_input


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_basics(case):
    run_case(case)


def test_returning_input_gives_the_same_object(counter):
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    compiled = capture.compile(return_input_unchanged, backend=counter, fullgraph=True)
    out = compiled(x, y)
    assert out[0] is x
    assert capture.compile(return_single_input, backend=counter)(y) is y


def test_graph_shape_matches_dynamo_convention(counter):
    capture.compile(pointwise_mix, backend=counter, fullgraph=True)(torch.randn(3, 4), torch.randn(3, 4))
    (gm,) = counter.graphs
    ops = [(node.op, node.target) for node in gm.graph.nodes]
    assert ops[:2] == [("placeholder", "L_x_"), ("placeholder", "L_y_")]
    assert ("call_function", torch.sin) in ops
    assert ("call_function", operator.mul) in ops
    assert ("call_method", "relu") in ops
    assert ("call_function", torch.softmax) in ops
    assert ops[-1][0] == "output"
    assert all(isinstance(example, torch.Tensor) for example in counter.example_inputs[0])


def test_global_tensor_is_a_graph_input(counter):
    compiled = capture.compile(globals_read, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    compiled(x)
    placeholders = [node.target for node in counter.graphs[0].graph.nodes if node.op == "placeholder"]
    assert placeholders == ["L_x_", "G_WEIGHT_"]
    saved = basics.WEIGHT
    try:
        basics.WEIGHT = torch.randn(4)  # same metadata: no recompile, new value used
        torch.testing.assert_close(compiled(x), globals_read(x))
        assert counter.count == 1
    finally:
        basics.WEIGHT = saved


def test_decorator_forms(counter):
    @capture.compile
    def bare(x):
        return x

    @capture.compile(backend=counter)
    def with_options(x):
        return x + 1

    assert bare.__name__ == "bare"
    torch.testing.assert_close(with_options(torch.ones(2)), torch.full((2,), 2.0))
    assert counter.count == 1


def test_closure_variables(counter):
    factor = 3.0

    def scaled(x):
        return x * factor

    compiled = capture.compile(scaled, backend=counter, fullgraph=True)
    torch.testing.assert_close(compiled(torch.ones(2)), torch.full((2,), 3.0))


def test_varargs_become_indexed_sources(counter):
    def f(x, *rest, scale=2):
        return x * scale + rest[0], rest

    compiled = capture.compile(f, backend=counter, fullgraph=True)
    a, b = torch.ones(2), torch.ones(2)
    out = compiled(a, b)
    assert out[1] is not None and out[1][0] is b
    torch.testing.assert_close(out[0], f(a, b)[0])
    with pytest.raises(IndexError):  # the user's error, raised by the real code
        compiled(a)


def test_records_and_bytecode_log(counter, caplog):
    import logging
    caplog.set_level(logging.DEBUG, logger="kiln.bytecode")
    capture.compile(pointwise_mix, backend=counter)(torch.randn(2, 4), torch.randn(2, 4))
    (record,) = capture.compiled_records()
    assert record.name == "pointwise_mix" and record.graph is counter.graphs[0]
    assert record.reason is None and "SIZE" in record.guards
    assert "normalised:" in caplog.text and "LOAD_ATTR 'sin'" in caplog.text
