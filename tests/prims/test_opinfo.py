"""PyTorch's OpInfo samples through the whole prims path: torch level -> ATen -> prims -> references.

Each sample becomes a tiny torch-level fx graph whose tensor arguments are graph inputs (non-tensor
arguments are baked in). The lowered prims graph must give eager's values, dtypes and shapes
exactly for ints/bools, and within the default tolerances for floats. Ops with no decomposition
become `kiln.fallback` nodes, which are checked just the same.

The full sweep (every sample) is marked `slow`; by default each (op, dtype) checks its first few
samples, which is deterministic (tests/kiln_opinfo.py seeds the sample generators).
`python tests/prims_coverage.py` prints the same check as a coverage table over all of op_db.
"""
import pytest
import torch

from kiln import prims
from kiln_opinfo import (ALL_CASES, BATCHES, CASES, FAST_SAMPLES, batched_samples, check_effects_spans, check_prims,
                         clones, combined_graph, run_samples)


def _check_sample(op, sample):
    result = check_prims(op, sample)
    if result.status in ("unsupported", "n/a"):  # data-dependent shapes, in-place ops; CUDA-only ops
        return f"{result.status}: {result.detail}"
    assert result.status != "fail", result.detail
    return None


@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_fast(op, dtype):
    run_samples(op, dtype, FAST_SAMPLES, _check_sample)


@pytest.mark.parametrize("ops, dtype", BATCHES)
def test_opinfo_batched(ops, dtype):
    """The newer ops' first samples, many ops to one graph (see kiln_opinfo.NEW_OPS)."""
    items = batched_samples(ops, dtype, per_op=2 if dtype == torch.float32 else 1)
    gm, inputs, call, spans, items = combined_graph(items)
    try:
        aten_gm = prims.trace_aten(gm, clones(inputs))
        pg = prims.decompose(aten_gm)
    except prims.UnsupportedGraph:  # some sample is refused: check them one by one
        for _, op, sample in items:
            _check_sample(op, sample)
        return
    check_effects_spans(lambda xs: prims.call_with_effects(pg, xs), call, inputs, aten_gm, spans)


@pytest.mark.slow
@pytest.mark.parametrize("op, dtype", ALL_CASES)
def test_opinfo_full(op, dtype):
    run_samples(op, dtype, None, _check_sample)
