"""Every thin-path case through the real C++ build and through Triton (interpreter on CPU),
compared with eager: values (exact for ints/bools), dtypes, strides, and input identity."""
import warnings

import pytest
import torch.fx as fx

from cases import CASES, IDS
from kiln.backend import KilnCompileWarning, compile_graph
from kiln_testing import check


@pytest.mark.parametrize("target", ["cpp", "triton"])
@pytest.mark.parametrize("name,fn,makers", CASES, ids=IDS)
def test_case(name, fn, makers, target):
    inputs = [m() for m in makers]
    gm = fx.symbolic_trace(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        compiled = compile_graph(gm, inputs, target=target)
    assert compiled.target == target
    got = check(compiled.call, fn, *inputs)
    expected = fn(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for g, e, i in zip(got, expected, range(len(got))):
        if any(e is x for x in inputs):  # eager returned an input: so must we
            assert any(g is x for x in inputs), f"output {i} should be the input itself"
