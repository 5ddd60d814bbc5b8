"""OpInfo samples through the whole back end: prims -> loop IR -> fused kernels -> the real C++
build (and Triton's interpreter), compared with eager. Graphs Kiln refuses (UnsupportedGraph:
output views of inputs, in-place ops inside an op's ATen trace, data-dependent shapes) skip that
sample with the reason; anything else that goes wrong fails."""
import pytest
import torch

from kiln.backend import compile_graph
from kiln_opinfo import (ALL_CASES, BATCHES, CASES, COMPLEX_CASES, batched_samples, check_effects, check_effects_spans, clones,
                         combined_graph, graph_of, run_samples, unspecified_outputs)
from kiln.prims import UnsupportedGraph
from half_compare import assert_close_16_bit, float64_run, half_cases

FAST_SAMPLES = {"cpp": 3, "triton": 2}


def _checker(target):
    def check_sample(op, sample):
        gm, inputs, call = graph_of(op, sample)
        try:
            compiled = compile_graph(gm, clones(inputs), target=target)
        except UnsupportedGraph as e:
            return f"unsupported: {e}"
        check_effects(lambda xs: compiled.call(*xs), call, inputs, compiled.aten_gm)  # outputs and inputs after
        return None

    return check_sample


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_fast(op, dtype, target):
    run_samples(op, dtype, FAST_SAMPLES[target], _checker(target))


# Triton's interpreter is slow: its default batches are float32 only (the full sweep runs every dtype).
BATCH_TARGETS = [pytest.param(ops, dtype, target, id=f"{p.id}-{target}") for p in BATCHES for (ops, dtype) in [p.values]
                 for target in (["cpp", "triton"] if dtype == torch.float32 else ["cpp"])]


@pytest.mark.parametrize("ops, dtype, target", BATCH_TARGETS)
def test_opinfo_batched(ops, dtype, target):
    """The newer ops' first samples, many ops to one graph: one C++ build (or Triton module) per group."""
    items = batched_samples(ops, dtype, per_op=1)  # the full sweep (KILN_FULL=1) runs every sample
    gm, inputs, call, spans, items = combined_graph(items)
    try:
        compiled = compile_graph(gm, clones(inputs), target=target)
    except UnsupportedGraph:  # some sample is refused: check them one by one
        for _, op, sample in items:
            _checker(target)(op, sample)
        return
    check_effects_spans(lambda xs: compiled.call(*xs), call, inputs, compiled.aten_gm, spans)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", ALL_CASES)
def test_opinfo_full(op, dtype, target):
    run_samples(op, dtype, None, _checker(target))


def _half_checker(dtype, target):
    def check_sample(op, sample):
        gm, inputs, call = graph_of(op, sample)
        expected = call(*inputs)
        try:
            compiled = compile_graph(gm, inputs, target=target)
        except UnsupportedGraph as e:
            return f"unsupported: {e}"
        assert_close_16_bit(compiled.call(*inputs), expected, dtype, float64_run(call, inputs, dtype),
                            unspecified_outputs(compiled.aten_gm))  # random draws, empty tensors
        return None

    return check_sample


@pytest.mark.parametrize("op, dtype", [p for p in half_cases(CASES) if p.values[1] == torch.bfloat16])
def test_opinfo_triton_bfloat16_fast(op, dtype):
    run_samples(op, dtype, 1, _half_checker(dtype, "triton"))


# The C++ target's default 16-bit sweep is batched (test_cpp_half.py)
@pytest.mark.slow
@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", half_cases(ALL_CASES))
def test_opinfo_16_bit_full(op, dtype, target):
    run_samples(op, dtype, None, _half_checker(dtype, target))


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", COMPLEX_CASES)
def test_opinfo_complex_on_pairs(op, dtype, target, monkeypatch):
    """Complex ops' OpInfo samples compile with no op-level fallback (KILN_STRICT=ops raises on one):
    their complex values are (real, imag) pairs in the kernels."""
    from kiln import config

    monkeypatch.setattr(config, "strict", "ops")
    run_samples(op, dtype, FAST_SAMPLES[target] if dtype in (torch.complex64, torch.float32) else 2, _checker(target))
