"""OpInfo samples through the whole back end: prims -> loop IR -> fused kernels -> the real C++
build (and Triton's interpreter), compared with eager. Graphs Kiln refuses (UnsupportedGraph:
output views of inputs, in-place ops inside an op's ATen trace, data-dependent shapes) skip that
sample with the reason; anything else that goes wrong fails."""
import pytest

from inductor import compile_graph
from kiln_opinfo import CASES, compare, graph_of, run_samples, unspecified_outputs
from prims import UnsupportedGraph

FAST_SAMPLES = {"cpp": 3, "triton": 2}


def _checker(target):
    def check_sample(op, sample):
        gm, inputs, call = graph_of(op, sample)
        expected = call(*inputs)
        try:
            compiled = compile_graph(gm, inputs, target=target)
        except UnsupportedGraph as e:
            return f"unsupported: {e}"
        got = compiled.call(*inputs)
        compare(got, expected, unspecified_outputs(compiled.aten_gm))
        return None

    return check_sample


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_fast(op, dtype, target):
    run_samples(op, dtype, FAST_SAMPLES[target], _checker(target))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("op, dtype", CASES)
def test_opinfo_full(op, dtype, target):
    run_samples(op, dtype, None, _checker(target))
