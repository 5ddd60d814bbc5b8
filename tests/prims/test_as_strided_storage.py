"""aten.as_strided addresses storage. On a fresh op result (which owns its whole storage, laid out by
its strides) it decomposes to kiln.as_strided over the storage-ordered elements; on a graph input it
stays a kiln.fallback node on the input itself (which sees the caller's storage), also through
views that keep all of the input's storage; on other views it is unsupported (the graph
runs eagerly): a fallback there used to read a row-major copy and give a wrong answer. Found by the
e2e convnets: adaptive_avg_pool2d to 1x1 on channels-last input restrides its mean with as_strided_."""
import warnings

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln import prims
from kiln.backend import KilnCompileWarning, compile_fx
from kiln.prims import PRIMS

g = torch.Generator().manual_seed(0)
cl = torch.randn(2, 5, 3, 4, generator=g).to(memory_format=torch.channels_last)
plain = torch.randn(3, 4, generator=g)

DECOMPOSED = {
    "adaptive_avg_pool_1x1_channels_last": (lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1) * 2, cl),
    "fresh_row_major": (lambda x: (x * 2).as_strided((2, 3), (1, 4), 1) + 1, plain),
    "fresh_channels_last_storage_order": (lambda x: (x + 1).as_strided((6, 5), (5, 1), 3), cl),
    "fresh_overlapping_windows": (lambda x: (x - 1).as_strided((5, 4), (2, 1), 0), plain),
    # eager keeps x.t()'s strides (1, 3) for x.t() + 1: storage order is the transpose's
    "fresh_transposed_strides": (lambda x: (x.t() + 1).as_strided((2, 2), (1, 2), 1), plain.t().contiguous()),
    # stft frames a padded signal through a view of it
    "view_of_fresh": (lambda x: (x * 2).view(4, 3).as_strided((3, 2), (2, 3), 1), plain),
    "transpose_of_fresh": (lambda x: (x * 2).t().as_strided((2, 2), (1, 4), 2), plain),
    "stft": (lambda x: torch.stft(x, 8, hop_length=4, window=torch.ones(8), return_complex=True).abs(),
             torch.randn(2, 40, generator=g)),
}
FALLBACK = {
    "graph_input": (lambda x: x.as_strided((2, 2), (1, 2), 1) * 3, plain),
    "graph_input_view": (lambda x: x.as_strided((2, 2), (1, 2), 1) * 3, plain[1:]),
    # a whole-storage view of an input: the fallback runs on the input itself (stft with center=False)
    "view_of_graph_input": (lambda x: x.unsqueeze(0).transpose(0, 2).as_strided((2, 2), (1, 2), 1) * 3, plain[1:]),
    "frames_of_graph_input": (lambda x: x.view(1, 10).as_strided((4, 7), (1, 1)).sum(1), torch.randn(10, generator=g)),
}
UNSUPPORTED = {
    "view_with_offset": (lambda x: (x * 2)[1:].as_strided((2, 2), (1, 2), 1), plain),
    "view_of_transposed_slice": (lambda x: (x * 2)[:, 1:].t().as_strided((2, 2), (1, 2), 1), plain),
}


def _lower_and_check(fn, x):
    pg = prims.lower(fx.symbolic_trace(fn), [x])
    expected = fn(x)
    (got,) = prims.call_with_effects(pg, [x])
    torch.testing.assert_close(got, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        compiled = compile_fx(fx.symbolic_trace(fn), [x], target="cpp")
    got = compiled(x)
    got = got[0] if isinstance(got, (tuple, list)) else got
    torch.testing.assert_close(got, expected)
    assert got.stride() == expected.stride() or got.numel() <= 1
    return [str(n.args[0]) for n in pg.graph.nodes if n.target is PRIMS["fallback"]]


@pytest.mark.parametrize("name", sorted(DECOMPOSED))
def test_as_strided_of_fresh_result_decomposes(name):
    assert "aten.as_strided.default" not in _lower_and_check(*DECOMPOSED[name])


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_as_strided_of_input_or_view_stays_fallback(name):
    assert "aten.as_strided.default" in _lower_and_check(*FALLBACK[name])


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_as_strided_of_view_is_unsupported(name):
    fn, x = UNSUPPORTED[name]
    with pytest.raises(prims.UnsupportedGraph, match="as_strided"):
        prims.lower(fx.symbolic_trace(fn), [x])
    with pytest.warns(KilnCompileWarning, match="as_strided"):
        compiled = compile_fx(fx.symbolic_trace(fn), [x], target="cpp")
    got = compiled(x)
    torch.testing.assert_close(got[0] if isinstance(got, (tuple, list)) else got, fn(x))
