"""capture.compile with out-of-range indices: the compiled function raises what eager raises
(same type and message), leaves its inputs as eager leaves them, and keeps its compiled graph
(no recompile, no warning) for the next, valid call."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from kiln import capture
from kiln import config


def gather(x, i):
    return torch.gather(x, 0, i) * 2


def getitem(x, i):
    return x[i] + 1


def getitem_2d(x, i, j):
    return x[i, j].exp()


def embedding(w, i):
    return F.embedding(i, w) * 2


def take_and_index_select(x, i, j):
    return torch.take(x, i).sum() + torch.index_select(x, 1, j)


def mutate_then_gather(x, i):
    x[1:] *= 2  # eager has done this when it raises: the caller sees it done once
    return x[i].relu().sum(0)


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


T = torch.tensor
CASES = [
    (gather, (_x(5), T([0, 4])), [(_x(5), T([0, 7])), (_x(5), T([-1, 0]))]),
    (getitem, (_x(5), T([0, -5])), [(_x(5), T([0, 9])), (_x(5), T([0, -9]))]),
    (getitem_2d, (_x(4, 5), T([0, 3]), T([4, -5])), [(_x(4, 5), T([0, 1]), T([2, 5])), (_x(4, 5), T([4, 1]), T([0, 0]))]),
    (embedding, (_x(4, 3), T([[1, 3]])), [(_x(4, 3), T([[1, 6]])), (_x(4, 3), T([[-1, 0]]))]),
    (take_and_index_select, (_x(3, 4), T([11, -12]), T([3])), [(_x(3, 4), T([12, 0]), T([3])),
                                                               (_x(3, 4), T([0, 0]), T([-1]))]),
    (mutate_then_gather, (_x(3, 4), T([2, 0])), [(_x(3, 4), T([3, 0])), (_x(3, 4), T([0, -4]))]),
]


def _clones(args):
    return [a.clone() for a in args]


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("fn,good,bads", CASES, ids=[c[0].__name__ for c in CASES])
def test_compiled_function_raises_like_eager(fn, good, bads, target, monkeypatch):
    monkeypatch.setattr(config, "target", target)
    graphs = []

    def counting_kiln(gm, example_inputs):
        from kiln.backend import compile_fx

        graphs.append(gm)
        return compile_fx(gm, example_inputs)

    capture.reset()
    compiled = capture.compile(fn, backend=counting_kiln, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours, eagers = _clones(good), _clones(good)
        torch.testing.assert_close(compiled(*ours), fn(*eagers))
        for bad in bads:
            ours, eagers = _clones(bad), _clones(bad)
            with pytest.raises(Exception) as expected:
                fn(*eagers)
            with pytest.raises(type(expected.value)) as got:
                compiled(*ours)
            assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)
            for a, b in zip(ours, eagers):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        ours, eagers = _clones(good), _clones(good)
        torch.testing.assert_close(compiled(*ours), fn(*eagers))
    assert len(graphs) == 1
