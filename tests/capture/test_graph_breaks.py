"""Graph breaks beyond the corpus: explain, logs, caching of resume functions, policies
(loops, inlined calls, whole-frame fallbacks), capture.disable / allow_in_graph, errors."""
import inspect
import logging
import warnings

import pytest
import torch

from kiln import capture
from kiln.capture import breaks
from kiln.capture.bytecode import resume
from kiln.capture.bytecode.errors import BytecodeError
from kiln import config


def sink(value):
    print("sink", type(value).__name__)


def two_graphs(x):
    y = torch.sin(x) + 1
    print("between")
    return y * 2


LINE_OF_PRINT = two_graphs.__code__.co_firstlineno + 2


def test_explain_counts_graphs_and_breaks_with_reason_location_and_hint():
    out = capture.explain(two_graphs)(torch.randn(4))
    assert (out.graph_count, out.graph_break_count, out.ops_per_graph) == (2, 1, [2, 1])
    (graph_break,) = out.breaks
    assert graph_break.reason == f"call to builtin print() at {__file__}:{LINE_OF_PRINT}"
    assert graph_break.location == f"{__file__}:{LINE_OF_PRINT}" and graph_break.function == "two_graphs"
    assert graph_break.hint
    text = str(out)
    assert "Graph count: 2" in text and "Graph break count: 1" in text and f"{__file__}:{LINE_OF_PRINT}" in text


def test_explain_of_a_compiled_function_and_of_a_fallback():
    def gen(x):
        print("generator")
        yield x

    def uses_closure(x):
        def inner(t):
            return t + x
        print("closure")
        return inner(x)

    assert capture.explain(capture.compile(two_graphs))(torch.randn(4)).graph_count == 2
    out = capture.explain(gen)(torch.randn(4))
    assert (out.graph_count, out.graph_break_count) == (0, 0)
    assert len(out.eager_frames) == 1 and "graph breaks in generators are not supported" in out.eager_frames[0]
    out = capture.explain(uses_closure)(torch.randn(4))  # a frame with cells resumes after its break
    assert (out.graph_count, out.graph_break_count, out.eager_frames) == (1, 1, [])


def test_graph_breaks_and_bytecode_logs(caplog):
    for name in ("kiln.graph_breaks", "kiln.bytecode"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            capture.compile(two_graphs, backend="eager")(torch.randn(4))
    finally:
        for name in ("kiln.graph_breaks", "kiln.bytecode"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert f"graph break in two_graphs at {__file__}:{LINE_OF_PRINT}" in text
    assert "normalised:" in text and "break entry" in text and "resume_at_" in text  # original, then generated
    assert "LOAD_GLOBAL" in text and "CALL" in text  # dis text


def test_fullgraph_still_raises():
    with pytest.raises(capture.Unsupported, match="print"):
        capture.compile(two_graphs, backend="eager", fullgraph=True)(torch.randn(4))


def test_resume_functions_are_cached_per_code_and_offset(counter):
    compiled = capture.compile(two_graphs, backend=counter, dynamic=False)
    for shape in (3, 5, 7):  # each shape recompiles both pieces (static shapes), but the resume code is made once
        torch.testing.assert_close(compiled(torch.ones(shape)), two_graphs(torch.ones(shape)))
    codes = {key[0] for key in resume._CACHE}
    assert codes == {two_graphs.__code__} and len(resume._CACHE) == 1
    assert counter.count == 6 and len(breaks.BREAKS) == 3
    capture.reset()
    assert not resume._CACHE and not breaks.BREAKS


def test_break_in_a_loop_runs_the_rest_eagerly_and_never_recompiles(counter, no_warnings):
    def loop(x, n):
        for i in range(n):
            x = x * 2
            sink(x)
        return x + 1

    compiled = capture.compile(loop, backend=counter)
    for _ in range(5):
        x = torch.randn(3)
        torch.testing.assert_close(compiled(x, 4), loop(x, 4))
    assert counter.count == 1  # the graph before the first break, once
    # the loop breaks at the call of sink (inside the loop), sink once in its own frame
    assert [b.function.split(".")[-1] for b in breaks.BREAKS] == ["loop", "sink"]
    assert "inside a loop" in breaks.BREAKS[0].reason


def printing_callee(t):
    u = t + 1
    print("callee")
    return u * 2


def test_break_in_an_inlined_call_compiles_the_callee_as_its_own_frame(counter, no_warnings):
    def caller(x):
        return printing_callee(x.cos()) - 1

    compiled = capture.compile(caller, backend=counter)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), caller(x))
    names = [b.function.split(".")[-1] for b in breaks.BREAKS]
    assert names == ["caller", "printing_callee"]  # broke at the call site, then inside the trampolined callee
    graphs = sorted(r.name.split(".resume_at_")[0].split(".")[-1] + (".resume" if ".resume_at_" in r.name else "")
                    for r in capture.compiled_records() if r.graph is not None)
    assert graphs == ["caller", "caller.resume", "printing_callee", "printing_callee.resume"]
    assert counter.count == 4


def test_disable_and_allow_in_graph(counter, no_warnings):
    @capture.disable
    def untraced(t):
        return t * 2

    @capture.allow_in_graph
    def one_node(t):
        return t.sin() + 1

    assert capture.compile(untraced, backend=counter) is untraced
    compiled = capture.compile(lambda x: one_node(x) * 3, backend=counter)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), one_node(x) * 3)
    (graph,) = counter.graphs
    assert one_node in [node.target for node in graph.graph.nodes]
    compiled = capture.compile(lambda x: untraced(x + 1) - 1, backend=counter)
    torch.testing.assert_close(compiled(x), untraced(x + 1) - 1)
    assert "kiln.disable" in breaks.BREAKS[-1].reason
    disabled_builtin = capture.disable(torch.Tensor.sum)  # not a Python function: wrapped, then marked
    compiled = capture.compile(lambda x: disabled_builtin(x * 2) + 1, backend=counter)
    torch.testing.assert_close(compiled(x), (x * 2).sum() + 1)
    assert "kiln.disable" in breaks.BREAKS[-1].reason


def test_internal_error_while_breaking_falls_back_with_one_warning(monkeypatch, counter):
    monkeypatch.setattr(config, "strict", False)

    def broken(*args, **kwargs):
        raise BytecodeError("generated code failed verification")

    monkeypatch.setattr(breaks, "build_break_entry", broken)
    compiled = capture.compile(two_graphs, backend=counter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            x = torch.randn(4)
            torch.testing.assert_close(compiled(x), two_graphs(x))
    messages = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    assert len(messages) == 1 and "internal error while building the graph break" in messages[0]
    monkeypatch.setattr(config, "strict", True)
    capture.reset()
    with pytest.raises(BytecodeError):
        capture.compile(two_graphs, backend=counter)(torch.randn(4))


def test_generator_functions_fall_back_whole_frame(counter):
    def gen(x):
        print("generator")
        yield x + 1

    with pytest.warns(capture.FallbackWarning, match="generator"):
        assert torch.equal(list(capture.compile(gen, backend=counter)(torch.ones(2)))[0], torch.full((2,), 2.0))
    assert counter.count == 0


def test_exception_from_the_native_instruction_leaves_grad_mode_alone(no_warnings):
    @capture.disable
    def fails(t):
        raise RuntimeError("native failure")

    def f(x):
        with torch.no_grad():
            y = x * 2
            fails(y)
        return y

    compiled = capture.compile(f, backend="eager")
    with pytest.raises(RuntimeError, match="native failure"):
        compiled(torch.randn(3, requires_grad=True))
    assert torch.is_grad_enabled()


def test_a_function_with_a_signature_attribute_binds_its_own_parameters(counter):
    # transformers' deprecate_kwarg sets the wrapped function's signature on its (*args, **kwargs)
    # wrapper: the frame's locals are the code's parameters, not the ones the signature shows.
    def wrapped(x, scale=2.0):
        return x * scale

    def wrapper(*args, **kwargs):
        print("wrapper")
        return wrapped(*args, **kwargs) + len(kwargs)

    wrapper.__signature__ = inspect.signature(wrapped)
    compiled = capture.compile(wrapper, backend=counter)
    x = torch.randn(3)
    for call in (lambda f: f(x), lambda f: f(x, scale=3.0)):
        torch.testing.assert_close(call(compiled), call(wrapper))
    assert counter.count >= 1


def test_a_new_closure_each_call_breaking_inside_compiles_once(counter):
    # The caller makes a new closure per call and the break is inside it: the closure's frame
    # is compiled once per code (guarded by code), and no trampoline is kept per function object.
    def caller(x):
        y = x * 2

        def inner(t):
            u = t + y
            print("inside the closure")
            return u * 3

        return inner(x) - 1

    compiled = capture.compile(caller, backend=counter)
    kept = len(breaks._COMPILED)
    for _ in range(4):
        x = torch.randn(3)
        torch.testing.assert_close(compiled(x), caller(x))
    assert counter.count == 4 and len(breaks._COMPILED) == kept  # caller, inner (two pieces), caller again
