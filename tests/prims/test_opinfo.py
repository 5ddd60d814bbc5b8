"""PyTorch's OpInfo samples through the whole prims path: torch level -> ATen -> prims -> references.

Each sample becomes a tiny torch-level fx graph whose tensor arguments are graph inputs (non-tensor
arguments are baked in). The lowered prims graph must give eager's values, dtypes and shapes
exactly for ints/bools, and within the default tolerances for floats. Ops with no decomposition
become `kiln.fallback` nodes, which are checked just the same.

The full sweep (every sample) is marked `slow`; by default each (op, dtype) checks its first few
samples, which is deterministic (tests/kiln_opinfo.py seeds the sample generators).
"""
import operator

import pytest
import torch

import prims
from kiln_opinfo import CASES, FAST_SAMPLES, graph_of, run_samples


def _check_sample(op, sample):
    gm, inputs, call = graph_of(op, sample)
    expected = call(*inputs)
    try:
        pg = prims.lower(gm, inputs)
    except prims.UnsupportedGraph as e:  # includes data-dependent shapes (boolean masks, tensor starts)
        return f"unsupported: {e}"
    bad = [n.target for n in pg.graph.nodes
           if n.op == "call_function" and not (isinstance(n.target, prims.Prim) or n.target is operator.getitem)]
    assert not bad, f"non-prim targets in the prims graph: {bad}"
    got = pg(*inputs)
    assert len(got) == len(expected), (len(got), len(expected))
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        exact = not (e.dtype.is_floating_point or e.dtype.is_complex)
        torch.testing.assert_close(g, e, equal_nan=True, **({"rtol": 0, "atol": 0} if exact else {}))
    return None



@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_fast(op, dtype):
    run_samples(op, dtype, FAST_SAMPLES, _check_sample)


@pytest.mark.slow
@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_full(op, dtype):
    run_samples(op, dtype, None, _check_sample)
