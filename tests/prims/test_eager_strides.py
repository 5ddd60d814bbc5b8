"""The ATen trace records eager's strides, not fake tensors', for ops where the two differ
(prims/eager_strides.py), and library calls (fallbacks, extern prims) are told the layouts eager
gave their arguments (builder.ARG_METAS_KEY)."""
import itertools

import pytest
import torch
import torch.fx as fx

from kiln import prims
from kiln.prims.builder import ARG_METAS_KEY, META_KEY
from kiln.prims.eager_strides import RULES, is_dense, preserved_strides, view_strides

aten = torch.ops.aten
SHAPES = [(2, 3, 1, 4), (1, 3, 2, 3), (3, 1, 1, 2), (2, 2, 2, 2), (0, 3, 1, 2), (1, 1, 1, 1)]


def _laid_out(shape, perm, offset):
    phys = tuple(shape[d] for d in perm)
    base = torch.randn(offset + torch.Size(phys).numel())[offset:].view(phys)
    return base.permute([perm.index(d) for d in range(4)])


def _variants(x):
    """x, and views of it with gaps, overlaps and broadcasts."""
    yield x
    yield x[:, ::2]
    yield x[::2]
    yield x[..., :1]
    yield x[:, :1].expand(x.shape[0], 3, *x.shape[2:])
    yield torch.as_strided(x, x.shape, (0,) * 4)


def _tensors():
    for shape, perm, offset in itertools.product(SHAPES, itertools.permutations(range(4)), (0, 2)):
        yield from _variants(_laid_out(shape, perm, offset))


def test_preserved_strides_are_eager_empty_likes():
    """Every memory order, dense or not, size-1 and size-0 dims: the strides eager's empty_like picks."""
    for t in _tensors():
        assert preserved_strides(tuple(t.shape), t.stride()) == torch.empty_like(t).stride(), (t.shape, t.stride())
        assert is_dense(tuple(t.shape), t.stride()) == (torch.empty_like(t).stride() == t.stride() or t.numel() == 0 or
                                                        _non_overlapping_dense(t))


def _non_overlapping_dense(t):
    return t.is_contiguous() or torch._prims_common.is_non_overlapping_and_dense_or_false(t)


VIEW_SHAPES = [(24,), (2, 12), (6, 4), (2, 3, 4), (2, 3, 1, 4), (1, 2, 3, 1, 4), (2, 1, 12), (24, 1), (1, 1, 24, 1)]


def test_view_strides_are_eager_views():
    """ATen's computeStride: every view of every memory order (size-1 dims placed by their chunk),
    impossible views None; empty and 0-dim tensors too."""
    for shape in [(2, 3, 1, 4), (1, 3, 2, 4), (2, 3, 4, 1)]:
        for perm in itertools.permutations(range(4)):
            x = _laid_out(shape, perm, 1)
            for v in (x, x[:, :2], x.expand(3, *shape[1:]) if shape[0] == 1 else x[::2]):
                for new in VIEW_SHAPES + [tuple(v.shape)]:
                    if torch.Size(new).numel() != v.numel():
                        continue
                    try:
                        expected = v.view(new).stride()
                    except RuntimeError:
                        expected = None
                    assert view_strides(tuple(v.shape), v.stride(), new) == expected, (v.shape, v.stride(), new)
    for v, new in [(torch.randn(()), (1, 1)), (torch.randn(1, 1), ()), (torch.randn(2, 0, 3), (0, 6)),
                   (torch.randn(2, 0, 3).permute(2, 0, 1), (3, 2, 0))]:
        assert view_strides(tuple(v.shape), v.stride(), new) == v.view(new).stride()


LIKE_OPS = {
    "empty_like": lambda x: torch.empty_like(x),
    "zeros_like": lambda x: torch.zeros_like(x),
    "ones_like_int": lambda x: torch.ones_like(x, dtype=torch.int32),
    "full_like": lambda x: torch.full_like(x, 2.0),
    "rand_like": lambda x: torch.rand_like(x),
    "randn_like": lambda x: torch.randn_like(x),
    "randint_like": lambda x: torch.randint_like(x, 5),
    "resize_as_self": lambda x: aten.resize_as(x, x),
    "resize_as_other_shape": lambda x: aten.resize_as(x, x.flatten()),
    "resize_as_channels_last": lambda x: aten.resize_as(x, x, memory_format=torch.channels_last),
    "resize_as_preserve": lambda x: aten.resize_as(x, x, memory_format=torch.preserve_format),
    "view_as": lambda x: x.view_as(x),
    "reshape_flat": lambda x: x.reshape(-1, 1),
}


def _check_trace_strides(name, every):
    """The traced (and functionalized) node of the op has the strides eager's result has; fake
    tensors alone give a size-1 dim another stride, or restride resize_as's kept layout."""
    fn = LIKE_OPS[name]
    perms = list(itertools.permutations(range(4)))[sorted(LIKE_OPS).index(name) % every::every]
    for shape, perm in itertools.product(SHAPES[:4], perms):
        for x in list(_variants(_laid_out(shape, perm, 1)))[:3]:
            gm = prims.functionalize(prims.trace_aten(fx.symbolic_trace(fn), [x]))
            (out,) = [n for n in gm.graph.nodes if n.op == "output"]
            (node,) = out.args[0]
            assert node.meta[META_KEY].strides == fn(x).stride(), (x.shape, x.stride())


@pytest.mark.parametrize("name", sorted(LIKE_OPS))
def test_trace_records_eager_strides(name):
    _check_trace_strides(name, every=8)  # three memory orders per op (KILN_FULL=1: all 24)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIKE_OPS))
def test_trace_records_eager_strides_full(name):
    _check_trace_strides(name, every=1)


def test_rules_cover_every_like_op():
    """A new `*_like` overload in torch gets a rule here (or fake tensors' strides, unchecked)."""
    for packet in ("empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like"):
        for name in getattr(aten, packet).overloads():
            if "out" not in name:
                assert getattr(getattr(aten, packet), name) in RULES, f"aten.{packet}.{name}"


def test_library_calls_get_eager_argument_layouts():
    """A fallback (resize_as) and an extern prim (as_strided_scatter) of the traced graph carry their
    arguments' eager TensorMetas; the same call on the same value in another eager layout stays a
    node of its own (common-subexpression elimination would hand it the first layout)."""
    def fn(x, y):
        a = aten.resize_as(x, y)
        b = aten.resize_as(x.clone(memory_format=torch.channels_last), y)
        c = torch.as_strided_scatter(x * 2, y[0, :2], (2,), (1,), 1)
        return a, b, c

    x, y = torch.randn(2, 3, 2, 4), torch.randn(4, 12)
    gm = prims.lower(fx.symbolic_trace(fn), [x, y])
    calls = [n for n in gm.graph.nodes if ARG_METAS_KEY in n.meta]
    assert [str(n.target) for n in calls] == ["kiln.fallback", "kiln.fallback", "kiln.as_strided_scatter"]
    (a_args, _), (b_args, _), (c_args, _) = [n.meta[ARG_METAS_KEY] for n in calls]
    assert a_args[0] is None and a_args[1].strides == x.stride() and a_args[2].strides == y.stride()
    assert b_args[1].strides == x.clone(memory_format=torch.channels_last).stride()
    assert c_args[0].strides == (x * 2).stride() and c_args[1].strides == y[0, :2].stride()
    for got, expected in zip(prims.call_with_effects(gm, [x, y]), fn(x, y)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
