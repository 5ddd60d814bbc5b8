"""Writes eager makes to memory that several elements share, or through a view with no inverse: an
expanded input written in place, a write through a broadcasting `expand` or an `unfold`. The op runs
as is on a copy of its storage (prims/write_on_copy.py), inside the compiled graph: no whole-graph
fallback (KILN_STRICT=1). Both entry points; outputs, every input's final state and aliasing equal
eager's (kiln_effects.check_effects), zero-size and 0-dim tensors included."""
import warnings

import pytest
import torch

import kiln
from kiln import records
from kiln_effects import check_effects
from kiln_entries import ENTRY_POINTS

NAN, INF = float("nan"), float("inf")


pytestmark = pytest.mark.usefixtures("strict")


ENTRIES = ENTRY_POINTS


def _seeded(factory):
    def make():
        torch.manual_seed(0)
        return list(factory())

    return make


def fill_expanded_input(x):
    x.fill_(7)
    return x


def index_put_expanded_input(x, idx, v):
    x.index_put_((idx,), v)  # rows 0 and 1 are one row of memory: the last write wins, as in eager
    return x


def row_of_expanded_input(x):
    x[0].add_(1)  # a plain row, but every row is that memory: all of them change
    return x * 2


def setitem_through_expand(x):
    x.expand(3, 4)[0, 0] = 1.0
    return x


def expand_that_only_aliases(x):
    x.expand(1, 2, 2).relu_()  # adds a leading 1, repeats nothing: a plain write back
    return x


def unfold_overlapping_fill(x):
    x.unfold(0, 3, 1).fill_(2)
    return x + 1


def unfold_disjoint_add(x):
    x.unfold(0, 2, 2).add_(1)
    return x * 1


def masked_fill_broadcast_intermediate(x, m):
    return (x * 2).expand(3, 4).masked_fill_(m, NAN) * 1


def expanded_zero_size(x):
    x.fill_(1)
    return x


def zero_dim_expanded(x):
    return x.expand(2, 3).fill_(INF) * 1 + x


def int_expanded_then_read(x, y):
    x.index_put_((torch.tensor([1]),), y)
    return x + 1, x.sum()


CASES = {
    "fill_expanded_input": (fill_expanded_input, lambda: [torch.tensor([-2.5]).expand(3)]),
    "index_put_expanded_input": (index_put_expanded_input, lambda: [
        torch.tensor([[-4]], dtype=torch.int32).expand(2, 1), torch.tensor([0, 1]),
        torch.tensor([[3], [-9]], dtype=torch.int32)]),
    "row_of_expanded_input": (row_of_expanded_input, lambda: [torch.randn(4).expand(3, 4)]),
    "setitem_through_expand": (setitem_through_expand, lambda: [torch.randn(1, 4)]),
    "expand_that_only_aliases": (expand_that_only_aliases, lambda: [torch.randn(2, 2)]),
    "unfold_overlapping_fill": (unfold_overlapping_fill, lambda: [torch.randn(6)]),
    "unfold_disjoint_add": (unfold_disjoint_add, lambda: [torch.randn(6)]),
    "masked_fill_broadcast_intermediate": (masked_fill_broadcast_intermediate,
                                           lambda: [torch.tensor([-0.0, INF, -INF, 1e-40]), torch.rand(3, 4) > 0.5]),
    "expanded_zero_size": (expanded_zero_size, lambda: [torch.randn(1, 0).expand(3, 0)]),
    "zero_dim_expanded": (zero_dim_expanded, lambda: [torch.tensor(1.5)]),
    "int_expanded_then_read": (int_expanded_then_read, lambda: [
        torch.tensor([[torch.iinfo(torch.int64).max, -1]]).expand(3, 2), torch.tensor([[5, torch.iinfo(torch.int64).min]])]),
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", CASES)
def test_write_matches_eager_without_a_whole_graph_fallback(entry, name):
    fn, factory = CASES[name]
    make = _seeded(factory)
    compiled = ENTRIES[entry](fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # eager's own "index_put_ on expanded tensors" warning
        check_effects(compiled, fn, make)
        check_effects(compiled, fn, make)  # the second call reuses the compiled code
    done = records.backend_records()
    assert done and all(r.compiled for r in done), [str(r) for r in done]


@pytest.mark.parametrize("entry", ENTRIES)
def test_write_eager_refuses_raises_eagers_error(entry):
    """add_ on memory several elements share: eager raises its internal-overlap error, and so does Kiln."""
    def fn(x):
        x.expand(3, 4).add_(1)
        return x

    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        fn(torch.randn(1, 4))
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        ENTRIES[entry](fn)(torch.randn(1, 4))


def test_the_write_is_an_op_level_fallback():
    fn, factory = CASES["setitem_through_expand"]
    kiln.compile(fn)(*_seeded(factory)())
    (record,) = records.backend_records()
    assert record.compiled and record.fallback_ops == ("kiln.write_on_copy.default",), str(record)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_recurrent_cells_write_gates_split_from_one_matmul(entry):
    """gru_cell and lstm_cell decompose to unsafe_split of one addmm and write the gates in place:
    the pieces view one buffer though unsafe_split's schema says they are fresh (slanet's GRU
    cell was refused whole as a hidden alias)."""
    torch.manual_seed(0)
    gru, lstm = torch.nn.GRUCell(6, 4), torch.nn.LSTMCell(6, 4)

    def fn(x, h, c):
        h1 = gru(x, h)
        return (h1, *lstm(x, (h1, c)))

    x, h, c = torch.randn(3, 6), torch.randn(3, 4), torch.randn(3, 4)
    x[0, 0] = INF
    with torch.no_grad():
        torch.testing.assert_close(ENTRIES[entry](fn)(x, h, c), fn(x, h, c), equal_nan=True)
    assert all(r.compiled and not r.fallbacks for r in records.backend_records())
