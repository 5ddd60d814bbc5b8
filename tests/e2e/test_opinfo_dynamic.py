"""OpInfo samples through `torch.compile(fn, backend="kiln", dynamic=True)`: every graph has
symbolic sizes, and its outputs equal eager's (KILN_STRICT=1: nothing may run eagerly). A graph
that cannot be size-generic compiles per concrete size, which is correct but counted: the share of
size-generic graphs is asserted so it cannot silently fall. CI runs the first sample of each op;
`KILN_FULL=1` runs three."""
import os

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db

from kiln import records

pytestmark = pytest.mark.usefixtures("strict")

OPS = ["sin", "exp", "abs", "neg", "sigmoid", "tanh", "sqrt", "rsqrt", "nn.functional.relu", "nn.functional.gelu",
       "nn.functional.silu", "add", "mul", "sub", "div.no_rounding_mode", "div.floor_rounding", "maximum", "where", "clamp", "pow", "masked_fill",
       "sum", "mean", "amax", "amin", "prod", "var", "std", "softmax", "log_softmax", "nn.functional.layer_norm",
       "matmul", "bmm", "transpose", "permute", "reshape", "view", "flatten", "cat", "stack", "expand",
       "cumsum", "argmax", "tril", "triu", "index_select", "gather", "nn.functional.embedding", "linalg.vector_norm",
       "logsumexp", "squeeze", "unsqueeze", "narrow", "repeat", "flip", "roll"]
SAMPLES = 3 if os.environ.get("KILN_FULL") else 1
BY_NAME = {(o.name if not o.variant_test_name else f"{o.name}.{o.variant_test_name}"): o for o in op_db}


def _samples(name):
    op = BY_NAME[name]
    out = []
    for s in op.sample_inputs("cpu", torch.float32, requires_grad=False):
        first = list(s.input) if isinstance(s.input, (list, tuple)) else [s.input]
        tensors = [*first, *[a for a in s.args if isinstance(a, torch.Tensor)]]
        if any(t.dim() == 0 or 1 in t.shape or 0 in t.shape for t in tensors):
            continue  # sizes 0 and 1 are specialised: those graphs are static (tests/e2e/test_dynamic_kernels.py)
        out.append(s)
        if len(out) == SAMPLES:
            break
    return op, out


def _run(op, sample):
    positions = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor)]
    listed = len(sample.input) if isinstance(sample.input, (list, tuple)) else None  # cat, stack

    def fn(*tensors):
        x, tensor_args = (list(tensors[:listed]), tensors[listed:]) if listed is not None else (tensors[0], tensors[1:])
        args = list(sample.args)
        for i, t in zip(positions, tensor_args):
            args[i] = t
        return op.op(x, *args, **sample.kwargs)

    first = list(sample.input) if listed is not None else [sample.input]
    tensors = [*first, *[sample.args[i] for i in positions]]
    expected = fn(*tensors)
    got = torch.compile(fn, backend="kiln", dynamic=True, fullgraph=True)(*tensors)
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=1e-4, atol=1e-5)
    return got


@pytest.mark.parametrize("name", OPS)
def test_opinfo_dynamic(name):
    op, samples = _samples(name)
    for sample in samples:
        torch._dynamo.reset()
        _run(op, sample)


def test_most_graphs_are_size_generic():
    """Over a fixed set of ops, the share of graphs compiled once for every size."""
    generic = per_size = 0
    for name in OPS:
        op, samples = _samples(name)
        for sample in samples[:1]:
            torch._dynamo.reset()
            before = len(records.backend_records())
            _run(op, sample)
            new = records.backend_records()[before:]
            generic += sum(r.dynamic for r in new)
            per_size += sum(r.per_size for r in new)
    assert generic + per_size > 30
    assert generic >= 0.8 * (generic + per_size), (generic, per_size)
