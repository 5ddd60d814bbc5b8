"""Guards: what makes a cached entry stale, and what the recompiles log says."""
import logging
import warnings

import pytest
import torch

from kiln import capture, config
from kiln.capture.guards import Guard, GuardSet, tensor_guards
from kiln.capture.sources import AttrSource, Frame, GetItemSource, LocalSource

OFFSET = 1.0
ACTIVATION = torch.relu


def uses_globals(x):
    return ACTIVATION(x) + OFFSET


def simple(x):
    return x * 2


@pytest.fixture
def recompiles(caplog):
    caplog.set_level(logging.DEBUG, logger="kiln.recompiles")
    return caplog


def _compile_and_call(fn, counter, *argument_sets):
    compiled = capture.compile(fn, backend=counter)
    return [compiled(*args) for args in argument_sets]


@pytest.mark.parametrize("first, second, message", [
    (torch.ones(3, 4), torch.ones(3, 4, dtype=torch.float64), "tensor 'x' dtype mismatch: expected torch.float32, got torch.float64"),
    (torch.ones(3, 4), torch.ones(4, 4), "tensor 'x' size mismatch at dim 0: expected 3, got 4"),
    (torch.ones(3, 4), torch.ones(3, 4, 2), "tensor 'x' ndim mismatch: expected 2, got 3"),
    (torch.ones(3, 4), torch.ones(3, 4, requires_grad=True), "tensor 'x' requires_grad mismatch"),
    (torch.ones(3, 4), torch.ones(4, 3).t(), "tensor 'x' stride mismatch at dim 0: expected 4, got 1"),
])
def test_tensor_guard_recompiles(first, second, message, counter, recompiles):
    _compile_and_call(simple, counter, (first,), (first.clone(),), (second,))
    assert counter.count == 2
    assert message in recompiles.text


def test_grad_mode_change_recompiles(counter, recompiles):
    compiled = capture.compile(simple, backend=counter)
    x = torch.ones(2, requires_grad=True)
    compiled(x)
    with torch.no_grad():
        assert not compiled(x).requires_grad
    assert counter.count == 2
    assert "grad mode changed: expected True, got False" in recompiles.text


def test_global_rebinding_recompiles(counter, recompiles):
    global ACTIVATION, OFFSET
    compiled = capture.compile(uses_globals, backend=counter)
    x = torch.randn(3)
    compiled(x)
    try:
        OFFSET = 2.0
        torch.testing.assert_close(compiled(x), uses_globals(x))
        assert "global 'OFFSET' value mismatch: expected 1.0, got 2.0" in recompiles.text
        ACTIVATION = torch.tanh
        torch.testing.assert_close(compiled(x), uses_globals(x))
        assert "global 'ACTIVATION' was rebound" in recompiles.text
    finally:
        ACTIVATION, OFFSET = torch.relu, 1.0
    assert counter.count == 3


def test_constant_argument_guard(counter, recompiles):
    def scaled(x, k):
        return x * k

    compiled = capture.compile(scaled, backend=counter)
    x = torch.ones(2)
    compiled(x, 2)
    compiled(x, 2)
    compiled(x, 3)
    compiled(x, 3.0)  # same value, different type: recompiles too
    assert counter.count == 3
    assert "value 'k' value mismatch: expected 2, got 3" in recompiles.text


def test_aliasing_guard(counter, recompiles):
    def add(x, y):
        return x + y

    compiled = capture.compile(add, backend=counter)
    a, b = torch.ones(2), torch.ones(2)
    compiled(a, b)
    torch.testing.assert_close(compiled(a, a), a + a)
    assert counter.count == 2
    assert "now the same object as 'y'" in recompiles.text or "now the same object as 'x'" in recompiles.text
    gm = counter.graphs[1]
    assert len([n for n in gm.graph.nodes if n.op == "placeholder"]) == 1


def test_recompile_limit_runs_eagerly_with_one_warning(counter):
    config.recompile_limit = 2
    compiled = capture.compile(simple, backend=counter, dynamic=False)  # (static: one graph per size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for size in range(1, 6):
            torch.testing.assert_close(compiled(torch.ones(size)), torch.full((size,), 2.0))
    assert counter.count == 2
    messages = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    assert len(messages) == 1 and "recompile limit (2)" in messages[0]


def test_reset_clears_caches(counter):
    compiled = capture.compile(simple, backend=counter)
    compiled(torch.ones(2))
    compiled(torch.ones(2))
    assert counter.count == 1
    capture.reset()
    assert capture.compiled_records() == []
    compiled(torch.ones(2))
    assert counter.count == 2


def test_guard_set_is_generated_code_with_readable_guards():
    guards = GuardSet()
    guards.extend(tensor_guards(LocalSource("x"), torch.ones(2, 3)))
    guards.compile()
    assert "def check_guards(L, G, B, C):" in guards.source_text
    assert "L['x'].shape == expected_" in guards.source_text
    lines = repr(guards).splitlines()
    assert lines[0].startswith("TYPE_MATCH") and "L['x']" in lines[0]
    frame = Frame({"x": torch.ones(2, 3)}, {}, {}, ())
    assert guards.check(frame)
    bad = Frame({"x": torch.ones(2, 4)}, {}, {}, ())
    assert not guards.check(bad)
    assert guards.explain_failure(bad) == "tensor 'x' size mismatch at dim 1: expected 3, got 4"
    missing = Frame({}, {}, {}, ())
    assert not guards.check(missing)
    assert "could not be read" in guards.explain_failure(missing)


def test_guards_log(counter, caplog):
    caplog.set_level(logging.DEBUG, logger="kiln.guards")
    caplog.set_level(logging.DEBUG, logger="kiln.graph")
    capture.compile(simple, backend=counter)(torch.ones(2))
    assert "SIZE" in caplog.text and "L['x']" in caplog.text
    assert "class CapturedGraph" in caplog.text


def test_logs_setting_enables_artifacts(monkeypatch):
    from kiln import logs
    monkeypatch.setattr(config, "logs", frozenset({"graph", "recompiles"}))
    monkeypatch.setattr(logs, "_enabled", set())
    for name in ("graph", "recompiles"):
        monkeypatch.setattr(logs.get_logger(name), "handlers", [])
        monkeypatch.setattr(logs.get_logger(name), "level", logging.NOTSET)
    logs.enable_from_config()
    logs.enable_from_config()  # once only
    assert logs.get_logger("graph").level == logging.DEBUG
    assert len(logs.get_logger("recompiles").handlers) == 1
    assert logs.get_logger("guards").level == logging.NOTSET


def _sum_all(xs):
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _aliasing_guards(compiled_record):
    return [line for line in compiled_record.guards.splitlines()
            if line.split()[0] in ("SAME_OBJECT", "DIFFERENT_OBJECT", "DISTINCT_OBJECTS")]


def test_alias_guards_grow_linearly_and_still_catch_any_pair(counter, recompiles):
    # 40 distinct inputs: one grouped guard, not 780 pairwise ones.
    xs = [torch.full((2,), float(i)) for i in range(40)]
    compiled = capture.compile(_sum_all, backend=counter)
    torch.testing.assert_close(compiled(xs), _sum_all(xs))
    assert len(_aliasing_guards(capture.compiled_records()[-1])) == 1
    aliased = list(xs)
    aliased[30] = aliased[7]  # any two of the forty becoming one object must miss
    torch.testing.assert_close(compiled(aliased), _sum_all(aliased))
    assert counter.count == 2
    assert "tensor 'xs[7]' is now the same object as 'xs[30]'" in recompiles.text
    # the new entry: xs[30] is xs[7], the other 39 distinct (one SAME_OBJECT, one DISTINCT_OBJECTS)
    assert len(_aliasing_guards(capture.compiled_records()[-1])) == 2
    torch.testing.assert_close(compiled(list(xs)), _sum_all(xs))
    assert counter.count == 2  # the first entry still serves distinct inputs


def _add_to_first(a, b, c, d):
    a.add_(1)
    return a + b + c + d


def test_storage_guards_of_a_mutated_input(counter, recompiles):
    compiled = capture.compile(_add_to_first, backend=counter)

    def check(make):  # make() builds fresh inputs with the aliasing under test, for each side
        torch.testing.assert_close(compiled(*make()), _add_to_first(*make()))

    def shared(pattern):  # pattern: which arguments share one tensor's memory, e.g. "aabc"
        bases = {}
        return [bases.setdefault(key, torch.arange(4.0)).view(4) for key in pattern]

    check(lambda: shared("aabc"))   # a (mutated) shares memory with b
    check(lambda: shared("aabb"))   # c and d now share, but neither is mutated: same entry
    assert counter.count == 1
    check(lambda: shared("abca"))   # a shares with d instead of b
    assert counter.count == 2
    assert "no longer shares memory" in recompiles.text or "now shares memory" in recompiles.text
    check(lambda: shared("abcd"))   # nothing shared: a third entry
    assert counter.count == 3


def _append_then_count(a, b, x):
    a.append(x)
    return x * len(b)


def test_mutated_list_must_stay_apart_from_other_inputs(counter, recompiles):
    compiled = capture.compile(_append_then_count, backend=counter)
    x = torch.ones(2)
    torch.testing.assert_close(compiled([], [], x), x * 0)
    shared = []  # the same (empty) list as both arguments: eager sees the append through b
    torch.testing.assert_close(compiled(shared, shared, x), x * 1)
    assert counter.count == 2
    assert "object 'a' is now the same object as 'b'" in recompiles.text
    torch.testing.assert_close(compiled([], [], x), x * 0)  # apart again: the first entry
    assert counter.count == 2


def _scaler(scale, shift):
    return lambda t: t * scale + shift


def applies(fn, x):
    return fn(x) + 1


def test_closures_of_one_code_share_an_entry_and_read_their_own_cells(counter, recompiles):
    # A closure is guarded by its code (and globals), not its identity: a frame that makes a
    # closure makes a new function object each call. Its cells are read through the source.
    compiled = capture.compile(applies, backend=counter)
    x = torch.randn(3)
    for scale in (torch.full((3,), 2.0), torch.full((3,), -1.0)):
        torch.testing.assert_close(compiled(_scaler(scale, 0.5), x), applies(_scaler(scale, 0.5), x))
    assert counter.count == 1
    # a different constant in a cell, or a different code, recompiles
    torch.testing.assert_close(compiled(_scaler(torch.ones(3), 2.0), x), x + 3)
    assert counter.count == 2 and "cell_contents" in recompiles.text
    torch.testing.assert_close(compiled(lambda t: t - 1, x), x)
    assert counter.count == 3 and "function code 'fn.__code__' was rebound" in recompiles.text


def test_a_closure_is_not_a_python_constant(counter):
    def same(fn, other, x):
        return x + 1 if fn is other else x - 1

    compiled = capture.compile(same, backend=counter)
    first, second = _scaler(1.0, 0.0), _scaler(1.0, 0.0)
    x = torch.zeros(2)
    assert torch.equal(compiled(first, first, x), x + 1)
    assert torch.equal(compiled(first, second, x), x - 1)


def test_values_many_guards_read_are_fetched_once():
    """A deep module read by many guards: each attribute chain is walked once per check, into a
    local named after the source; a missing link still fails the check, and the slow path names it."""
    class Node:
        pass

    root = Node()
    root.child = Node()
    root.child.leaf = Node()
    root.child.leaf.a, root.child.leaf.b, root.child.leaf.c = 1, 2.0, "s"
    leaf = AttrSource(AttrSource(LocalSource("m"), "child"), "leaf")
    guards = GuardSet()
    for name, value in (("a", 1), ("b", 2.0), ("c", "s")):
        guards.add(Guard(AttrSource(leaf, name), "CONSTANT_MATCH", value))
    guards.compile()
    assert guards.source_text.count("L['m'].child") == 1, guards.source_text
    assert "s1 = s0.leaf  # m.child.leaf" in guards.source_text
    assert guards.check(Frame({"m": root}, {}, {}, ()))
    root.child.leaf.b = 3.0
    assert not guards.check(Frame({"m": root}, {}, {}, ()))
    del root.child.leaf
    frame = Frame({"m": root}, {}, {}, ())
    assert not guards.check(frame) and "could not be read" in guards.explain_failure(frame)


def test_input_extractor_reads_shared_modules_once():
    from kiln.capture.cache import make_input_extractor

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    base = AttrSource(LocalSource("self"), "_modules")
    sources = [AttrSource(GetItemSource(base, str(i)), p) for i in range(2) for p in ("weight", "bias")]
    extract = make_input_extractor(sources)
    got = extract({"self": model}, {}, {}, ())
    assert all(a is b for a, b in zip(got, [model[0].weight, model[0].bias, model[1].weight, model[1].bias]))
