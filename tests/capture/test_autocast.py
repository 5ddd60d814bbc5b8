"""`with torch.autocast(...)` blocks in capture (capture/variables/autocast.py): traced into the graph
as TorchDynamo does (eager's dtypes, the ops compiled), the tracer's autocast state restored after a
trace, a graph break inside a block running the frame eagerly with one warning, and the caller's
autocast state guarded."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from kiln import capture
from kiln.capture.exc import FallbackWarning

W = torch.randn(8, 8)


def block(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.linear(x, W)
        z = torch.softmax(y, -1)
    return y, z, y.float() + 1


def nested(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = F.linear(x, W)
        with torch.autocast("cpu", enabled=False):
            b = F.linear(x, W)  # float32 again
        c = F.linear(x, W)
    return a, b, c


def as_target(x):
    with torch.autocast(device_type="cpu", dtype=torch.float16) as ctx:
        y = F.linear(x, W)
    return y, ctx is not None


def graph_break_inside(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.linear(x, W)
        print("inside")  # a graph break
        return y + 1


def _run(fn, x):
    capture.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = capture.compile(fn)(x)
    assert not torch.is_autocast_enabled("cpu"), "the trace left autocast on"
    return got, [w for w in caught if issubclass(w.category, FallbackWarning)]


def _tensors(out):
    return [t for t in (out if isinstance(out, tuple) else (out,)) if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("fn", [block, nested, as_target], ids=lambda f: f.__name__)
def test_autocast_block_is_traced(fn):
    x = torch.randn(4, 8)
    (got, fallbacks), expected = _run(fn, x), fn(x)
    assert not fallbacks, [str(w.message) for w in fallbacks]
    records = [r for r in capture.records.RECORDS if r.name == fn.__name__]
    assert records and records[-1].graph is not None
    targets = {n.target for n in records[-1].graph.graph.nodes}
    assert torch.amp.autocast_mode._enter_autocast in targets and torch.amp.autocast_mode._exit_autocast in targets
    for g, e in zip(_tensors(got), _tensors(expected)):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g, e)
    if fn is as_target:
        assert got[1] is True


def test_graph_break_inside_an_autocast_block_runs_eagerly(capsys):
    x = torch.randn(4, 8)
    (got, fallbacks), expected = _run(graph_break_inside, x), graph_break_inside(x)
    assert len(fallbacks) == 1 and "torch.autocast" in str(fallbacks[0].message)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected)
