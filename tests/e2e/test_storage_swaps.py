"""`x.set_(y)` (what `x.data = y` traces to under TorchDynamo): from there on x is y's alias, and a
graph input so changed takes, after the call, the storage of y's final value, viewed as eager's x
views it. Compiled (KILN_STRICT=1), through torch.compile, kiln.compile and compile_fx on a graph
holding set_; the inputs' final values, layouts and storage sharing equal eager's."""
import pytest
import torch
import torch.fx as fx

import kiln
from kiln import config, prims, records
from kiln.backend import compile_fx
from kiln_effects import check_effects, clone_inputs

NAN, INF = float("nan"), float("inf")


pytestmark = pytest.mark.usefixtures("strict")


class SwapsBuffers(torch.nn.Module):
    """A buffer read through an old view, written, then given new storage twice (switch_transformers
    style `.data =` assignments)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.zeros(2))
        self.register_buffer("old", torch.tensor([1.0, -0.0, INF]))

    def forward(self, x):
        v = self.old[1:]
        self.old.add_(1)
        y = x * 2
        self.buf.data = y[1:].t()  # a view at an offset, transposed
        self.buf.mul_(3)  # writes y's storage now
        self.old.data = x.new_empty(0)  # zero-size
        return self.buf + 1, v * 1, self.buf


def _same_module_state(m, me, offsets):
    for name in ("buf", "old"):
        a, b = getattr(m, name), getattr(me, name)
        torch.testing.assert_close(a, b, equal_nan=True)
        assert (a.shape, a.stride()) == (b.shape, b.stride()), name
        # kiln.compile replays `.data =` itself (a side effect after its graph) on a fresh tensor
        assert not offsets or a.storage_offset() == b.storage_offset(), name


@pytest.mark.parametrize("entry", ["torch.compile", "kiln.compile"])
def test_module_data_assignment_matches_eager(entry):
    m, me = SwapsBuffers(), SwapsBuffers()
    compiled = torch.compile(m, backend="kiln") if entry == "torch.compile" else kiln.compile(m)
    for x in (torch.tensor([[1.0, NAN, -INF], [2.0, -0.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]),
              torch.randn(4, 3)):
        got, expected = compiled(x.clone()), me(x.clone())
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, equal_nan=True)
        assert got[2] is m.buf and expected[2] is me.buf
        _same_module_state(m, me, offsets=entry == "torch.compile")
    assert all(r.compiled for r in records.backend_records()), [str(r) for r in records.backend_records()]


def set_to_fresh(a, b):
    a.set_(b * 2)
    return a + 1


def set_to_view_then_write(a, b):
    c = b + 1
    a.set_(c[1:])
    a.add_(10)
    return c.sum(), a


def set_zero_dim(a, b):
    a.set_(b.sum())  # 0-dim
    return a * 1


CASES = {
    "set_to_fresh": (set_to_fresh, lambda: [torch.zeros(2), torch.tensor([1.0, -INF, NAN])]),
    "set_to_view_then_write": (set_to_view_then_write, lambda: [torch.zeros(5), torch.tensor([0.5, -1.0, INF, 3.0])]),
    "set_zero_dim": (set_zero_dim, lambda: [torch.zeros(3), torch.tensor([2.0, 3.5])]),
    "set_zero_size": (set_to_fresh, lambda: [torch.zeros(2), torch.empty(0)]),
}


@pytest.mark.parametrize("name", CASES)
def test_set_in_a_graph_matches_eager(name):
    fn, make = CASES[name]
    torch.manual_seed(0)
    call = compile_fx(fx.symbolic_trace(fn), make())
    got, inputs = check_effects(call, fn, make)
    eager_inputs = make()
    fn(*eager_inputs)
    for a, b in zip(inputs, eager_inputs):
        assert (a.shape, a.stride(), a.storage_offset()) == (b.shape, b.stride(), b.storage_offset())


def test_set_to_another_inputs_storage_is_still_refused():
    """The caller's input would have to share the other input's storage: not expressed yet."""
    def fn(a, b):
        a.set_(b)
        return a * 2

    with pytest.raises(prims.UnsupportedGraph, match="not a fresh op result"):
        compile_fx(fx.symbolic_trace(fn), [torch.zeros(2), torch.ones(3)])
    config.strict = False
    with pytest.warns(kiln.KilnCompileWarning, match="set_"):
        call = compile_fx(fx.symbolic_trace(fn), [torch.zeros(2), torch.ones(3)])
    check_effects(call, fn, lambda: clone_inputs([torch.zeros(2), torch.ones(3)]))


class ConvertsItself(torch.nn.Module):
    """switch_transformers' router: `self.classifier = self.classifier.to(self.dtype)` in forward,
    which sets each parameter's data to itself (`Module._apply`: `p.data = p.to(dtype)`)."""

    def __init__(self):
        super().__init__()
        self.classifier = torch.nn.Linear(4, 3)

    def forward(self, x):
        self.classifier = self.classifier.to(torch.float32)
        return self.classifier(x).softmax(-1)


def test_set_to_its_own_storage_is_a_no_op_or_a_restride():
    model, twin = ConvertsItself(), ConvertsItself()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(5, 4)
    x[0, 0] = NAN
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, backend="kiln")(x), twin(x), equal_nan=True)
    assert all(r.compiled for r in records.backend_records())

    def transposes_itself(w, y):
        w.data = w.data.t()  # its own storage, another layout: a restride of the input
        return w * 2 + y

    w, y = torch.randn(3, 4), torch.randn(4, 3)
    ours, theirs = w.clone(), w.clone()
    torch.testing.assert_close(torch.compile(transposes_itself, backend="kiln")(ours, y), transposes_itself(theirs, y))
    assert ours.shape == theirs.shape and ours.stride() == theirs.stride()
    torch.testing.assert_close(ours, theirs)
