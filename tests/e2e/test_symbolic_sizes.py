"""Graphs of symbolic sizes from TorchDynamo (automatic dynamic shapes, `dynamic=True`,
`mark_dynamic`) compile, size-generically (kiln/dynamic.py) or, where a decision needs a concrete
size, once per concrete size (kiln/sizes.py), never eagerly: outputs and gradients equal eager's at
every size, 0 and 1 included, under KILN_STRICT=1."""
import warnings

import pytest
import torch

import kiln.dynamic
from kiln import config, records
from kiln.prims.symbolic import NotConcrete
from kiln.backend import KilnCompileWarning
from kiln_training import check_batches, layer_norm_mlp


pytestmark = pytest.mark.usefixtures("strict")


def _per_size_graphs() -> int:
    return sum(r.per_size for r in records.backend_records())


def _size_generic_graphs() -> int:
    return sum(r.dynamic for r in records.backend_records())


def _ran_eagerly():
    return [r for r in records.backend_records() if not r.compiled]


def fn_with_int(x, n):
    y = (x * 2).sum(0)
    return y[: x.shape[0] - 1] + n, x.reshape(-1, 1) * n


@pytest.mark.parametrize("rows", [[4, 5, 6, 1, 0, 7, 6]])
def test_dynamic_true_every_size(rows):
    compiled = torch.compile(fn_with_int, backend="kiln", dynamic=True)
    for b in rows:
        x = torch.randn(b, 3)
        torch.testing.assert_close(compiled(x, b), fn_with_int(x, b))
    # y[: x.shape[0] - 1] compares two sizes (b - 1 and 3): TorchDynamo guards it (a graph for each
    # side, and for sizes 0 and 1); each of its graphs is one size-generic build, none per size
    assert _per_size_graphs() == 0 and _size_generic_graphs() == len(records.backend_records())
    assert not _ran_eagerly()


def test_automatic_dynamic_after_a_size_change():
    def f(x, w):
        return torch.softmax(x @ w, -1).amax(-1, keepdim=True) - x.mean()

    compiled = torch.compile(f, backend="kiln")
    w = torch.randn(8, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        for b in (2, 3, 9, 3, 16):
            x = torch.randn(b, 8)
            x[0, 0] = float("nan") if b == 9 else x[0, 0]
            torch.testing.assert_close(compiled(x, w), f(x, w), equal_nan=True)
    assert _size_generic_graphs() == 1 and _per_size_graphs() == 0  # static first, then one shape-general graph
    assert not _ran_eagerly()


def test_mark_dynamic_and_strided_inputs():
    def f(x):
        return (x.t() + 1).cumsum(0)

    compiled = torch.compile(f, backend="kiln")
    for shape in ((3, 4), (5, 4), (2, 6)):
        base = torch.randn(shape[0], shape[1] * 2)
        x = base[:, ::2]  # strides that are not the contiguous ones
        torch._dynamo.mark_dynamic(x, 0)
        torch.testing.assert_close(compiled(x), f(x))
        y = torch.randn(shape)
        torch._dynamo.mark_dynamic(y, 0)
        torch.testing.assert_close(compiled(y), f(y))
    assert not _ran_eagerly()


def test_training_with_symbolic_batch():
    torch.manual_seed(0)
    model, reference = layer_norm_mlp(), layer_norm_mlp()
    reference.load_state_dict(model.state_dict())
    check_batches(torch.compile(model, backend="kiln", dynamic=True), model, reference, (4, 7, 1, 5))
    assert _size_generic_graphs() >= 1
    assert not _ran_eagerly()


def test_more_sizes_than_the_limit_run_eagerly_with_one_warning(monkeypatch):
    monkeypatch.setattr(config, "strict", False)
    monkeypatch.setattr(config, "recompile_limit", 2)

    def not_size_generic(*args, **kwargs):  # (what a size-generic build cannot do: per concrete size)
        raise NotConcrete("a decision on a concrete size")
    monkeypatch.setattr(kiln.dynamic, "compile_dynamic", not_size_generic)

    def f(x):
        return torch.relu(x)[: x.shape[0] // 2] * x.shape[0]

    compiled = torch.compile(f, backend="kiln", dynamic=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for b in (2, 3, 4, 5, 6):
            x = torch.randn(b)
            torch.testing.assert_close(compiled(x), f(x))
    kiln_warnings = [w for w in caught if issubclass(w.category, KilnCompileWarning)]
    assert len(kiln_warnings) == 1, [str(w.message) for w in kiln_warnings]
    assert "more than 2 sizes" in str(kiln_warnings[0].message)
    assert kiln_warnings[0].filename == __file__  # the warning points at the user's line


def test_float_argument_that_changes():
    """A Python float argument: TorchDynamo guards on it (or passes it as a 0-dim tensor); every
    value gives eager's result and nothing runs eagerly."""
    def f(x, scale):
        return x * scale + scale

    compiled = torch.compile(f, backend="kiln")
    for scale in (0.5, 2.0, -1.25, float("inf")):
        x = torch.randn(4)
        torch.testing.assert_close(compiled(x, scale), f(x, scale), equal_nan=True)
    assert not _ran_eagerly()
