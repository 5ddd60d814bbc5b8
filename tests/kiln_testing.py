"""Shared helpers for the back-half tests: lower a Python function through every stage."""
import torch
import torch.fx as fx

from kiln import prims
from kiln.inductor.graph import GraphLowering
from kiln.inductor.scheduler import FusedKernel, Scheduler


def lower(fn, *inputs):
    gm = fx.symbolic_trace(fn)
    pg = prims.lower(gm, list(inputs))
    graph = GraphLowering(pg, list(inputs)).run()
    return graph, Scheduler(graph).run()


def kernels(schedule):
    return [i for i in schedule.items if isinstance(i, FusedKernel)]


def check(compiled_fn, fn, *inputs, exact=None):
    """Compare a compiled callable with eager: values, dtypes, strides; inputs untouched."""
    before = [x.clone() for x in inputs]
    got = compiled_fn(*inputs)
    expected = fn(*before)
    got = got if isinstance(got, (tuple, list)) else (got,)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        exact_here = exact if exact is not None else not (e.dtype.is_floating_point or e.dtype.is_complex)
        tol = {"rtol": 0, "atol": 0} if exact_here else {}
        torch.testing.assert_close(g, e, equal_nan=True, **tol)
        assert g.stride() == e.stride() or g.numel() <= 1, (g.stride(), e.stride())
    for x, b in zip(inputs, before):
        torch.testing.assert_close(x, b, rtol=0, atol=0, equal_nan=True)
    return got
