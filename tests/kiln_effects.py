"""Compare a compiled callable with eager on everything a caller can observe: the outputs (values,
dtypes, strides), the state of every input after the call, and aliasing (which outputs are the very
input tensors, and which share storage with an input or another output, at which offset)."""
import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten


def graph_of(fn, n_inputs: int) -> fx.GraphModule:
    """A torch-level graph with one call of `fn` (run as is on fakes by trace_aten, so anything goes:
    setitem, out=, augmented assignment)."""
    graph = fx.Graph()
    placeholders = [graph.placeholder(f"x{i}") for i in range(n_inputs)]
    graph.output(graph.call_function(fn, tuple(placeholders)))
    return fx.GraphModule(torch.nn.Module(), graph)


def clone_inputs(inputs):
    """Fresh copies in fresh storage with the same layout: sizes, strides, storage offset and size;
    a tensor passed twice stays one tensor, and tensors sharing storage still share (fresh) storage."""
    tensors, storages = {}, {}

    def clone(x):
        if not isinstance(x, torch.Tensor):
            return x
        if id(x) not in tensors:
            old = x.untyped_storage()
            new = storages.setdefault(old._cdata, old.clone())
            tensors[id(x)] = torch.empty(0, dtype=x.dtype, device=x.device).set_(new, x.storage_offset(), x.shape,
                                                                                 x.stride())
        return tensors[id(x)]

    return [clone(x) for x in inputs]


def _storage(t):
    return t.untyped_storage()._cdata


def aliasing(outs, ins):
    """For each output and each input or earlier output: (is it that tensor, shares its storage, offset delta)."""
    seen = list(ins)
    facts = []
    for k, o in enumerate(outs):
        if isinstance(o, torch.Tensor):
            for j, t in enumerate(seen):
                if isinstance(t, torch.Tensor):
                    shared = _storage(o) == _storage(t)
                    facts.append((k, j, o is t, shared, o.storage_offset() - t.storage_offset() if shared else None))
        seen.append(o)
    return facts


def _close(got, expected, what):
    exact = not (expected.dtype.is_floating_point or expected.dtype.is_complex)
    assert got.dtype == expected.dtype and got.shape == expected.shape, \
        f"{what}: got {got.dtype}{list(got.shape)}, eager {expected.dtype}{list(expected.shape)}"
    torch.testing.assert_close(got, expected, equal_nan=True, msg=lambda m: f"{what}: {m}",
                               **({"rtol": 0, "atol": 0} if exact else {}))


def check_effects(compiled, fn, make_inputs):
    """Run `fn` eagerly and `compiled` on equal fresh inputs (`make_inputs()` makes a new list each
    call) and compare outputs, the inputs' final values, and aliasing."""
    eager_in, kiln_in = make_inputs(), make_inputs()
    expected, _ = tree_flatten(fn(*eager_in))
    got, _ = tree_flatten(compiled(*kiln_in))
    assert len(got) == len(expected), (len(got), len(expected))
    for i, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(e, torch.Tensor):
            assert g == e, (i, g, e)
            continue
        _close(g, e, f"output {i}")
        assert g.numel() <= 1 or g.stride() == e.stride(), f"output {i}: strides {g.stride()} vs eager {e.stride()}"
    for i, (x, e) in enumerate(zip(kiln_in, eager_in)):
        if isinstance(e, torch.Tensor):
            _close(x, e, f"input {i} after the call")
    assert aliasing(got, kiln_in) == aliasing(expected, eager_in), "aliasing differs from eager's"
    return got, kiln_in
