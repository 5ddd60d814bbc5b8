"""OpInfo samples as tiny torch-level graphs, shared by the prims and codegen sweeps.

PyTorch's OpInfo database is the source of op samples: each sample becomes an fx graph whose
tensor arguments are graph inputs (non-tensor arguments are baked in).
"""
import pytest
import torch
import torch.fx as fx
from torch.testing._internal.common_methods_invocations import op_db
from torch.utils._pytree import tree_flatten, tree_unflatten

# OpInfo (name, variant_test_name) pairs whose ATen ops Kiln decomposes (plus a few that reach
# fallbacks on the way). Names are from op_db; `_selected` fails loudly if one disappears.
OPS = [
    # elementwise unary
    ("abs", ""), ("neg", ""), ("exp", ""), ("log", ""), ("log1p", ""), ("expm1", ""), ("sin", ""),
    ("cos", ""), ("tan", ""), ("tanh", ""), ("sqrt", ""), ("rsqrt", ""), ("reciprocal", ""), ("erf", ""),
    ("floor", ""), ("ceil", ""), ("trunc", ""), ("round", ""), ("sign", ""), ("sigmoid", ""),
    ("nn.functional.relu", ""), ("nn.functional.silu", ""), ("nn.functional.gelu", ""),
    ("logical_not", ""),
    # elementwise binary / ternary
    ("add", ""), ("sub", ""), ("mul", ""), ("div", "no_rounding_mode"), ("true_divide", ""), ("pow", ""),
    ("maximum", ""), ("minimum", ""), ("max", "binary"), ("min", "binary"),
    ("eq", ""), ("ne", ""), ("lt", ""), ("le", ""), ("gt", ""), ("ge", ""),
    ("logical_and", ""), ("logical_or", ""), ("where", ""),
    ("clamp", ""), ("clamp_min", ""), ("clamp_max", ""), ("rsub", ""),
    # reductions and normalisations
    ("sum", ""), ("prod", ""), ("mean", ""), ("amax", ""), ("amin", ""), ("argmax", ""), ("argmin", ""),
    ("max", "reduction_no_dim"), ("max", "reduction_with_dim"),
    ("min", "reduction_no_dim"), ("min", "reduction_with_dim"),
    ("var", ""), ("var", "unbiased"), ("var_mean", ""), ("var_mean", "unbiased"),
    ("softmax", ""), ("softmax", "with_dtype"), ("log_softmax", ""), ("log_softmax", "with_dtype"),
    ("nn.functional.layer_norm", ""),
    # views and copies (outputs that alias an input are cloned, see `_graph_of`)
    ("view", ""), ("view_as", ""), ("reshape", ""), ("reshape_as", ""), ("permute", ""), ("transpose", ""),
    ("t", ""), ("unsqueeze", ""), ("squeeze", ""), ("squeeze", "multiple"), ("expand", ""), ("expand_as", ""),
    ("narrow", ""), ("select", ""), ("__getitem__", ""), ("contiguous", ""), ("clone", ""),
    # matrix products
    ("matmul", ""), ("mm", ""), ("bmm", ""), ("addmm", ""), ("addmm", "decomposed"),
    # creation
    ("full", ""), ("zeros_like", ""), ("ones_like", ""), ("full_like", ""),
]

# Deliberately left out: div with rounding_mode and round with decimals (no decompositions; they
# would only exercise fallbacks), and ops whose ATen traces are mostly fallbacks (cat, index, ...).
DTYPES = [torch.float32, torch.int64, torch.bool]
FAST_SAMPLES = 6  # samples per (op, dtype) in the default run (reaches the 0-d and empty samples)


def selected():
    by_key = {(op.name, op.variant_test_name): op for op in op_db}
    missing = [k for k in OPS if k not in by_key]
    assert not missing, f"OpInfos not in op_db: {missing}"
    cases = []
    for key in OPS:
        op = by_key[key]
        supported = op.supported_dtypes("cpu")
        for dtype in DTYPES:
            if dtype in supported:
                name = key[0] + (f".{key[1]}" if key[1] else "")
                cases.append(pytest.param(op, dtype, id=f"{name}-{str(dtype).replace('torch.', '')}"))
    return cases


CASES = selected()


def _shares_storage(t, inputs):
    storage = t.untyped_storage()._cdata
    return any(storage == x.untyped_storage()._cdata for x in inputs)


def graph_of(op, sample, clone_views=True):
    """(GraphModule, tensor inputs, eager callable): a torch-level graph computing `op` on this sample.

    The graph returns a flat tuple of tensors. By default an output that is a view of an input is
    cloned: Kiln would return such an output as a view of the input (eager's aliasing), computing
    nothing, and the clone keeps the view op's values under test. `clone_views=False` keeps the
    views, to test the aliasing itself.
    """
    flat, spec = tree_flatten((sample.input, sample.args, sample.kwargs))
    tensor_pos = [i for i, a in enumerate(flat) if isinstance(a, torch.Tensor)]
    inputs = [flat[i] for i in tensor_pos]

    def call(*tensors):
        leaves = list(flat)
        for i, t in zip(tensor_pos, tensors):
            leaves[i] = t
        inp, args, kwargs = tree_unflatten(leaves, spec)
        outs, _ = tree_flatten(op.op(inp, *args, **kwargs))
        outs = [o for o in outs if isinstance(o, torch.Tensor)]
        return tuple(o.clone() if clone_views and _shares_storage(o, tensors) else o for o in outs)

    graph = fx.Graph()
    placeholders = [graph.placeholder(f"x{i}") for i in range(len(inputs))]
    graph.output(graph.call_function(call, tuple(placeholders)))
    return fx.GraphModule(torch.nn.Module(), graph), inputs, call


def describe(sample):
    """The sample with tensors shown as dtype[shape] (OpInfo reprs print whole tensors)."""
    def short(a):
        if isinstance(a, torch.Tensor):
            nc = "" if a.is_contiguous() else " noncontig"
            return f"{str(a.dtype).replace('torch.', '')}{list(a.shape)}{nc}"
        return a
    from torch.utils._pytree import tree_map
    return tree_map(short, (sample.input, sample.args, sample.kwargs))




def run_samples(op, dtype, limit, check_sample):
    """check_sample(op, sample) -> None when checked, or a reason to skip that sample."""
    torch.manual_seed(0)  # OpInfo sample generators draw from the global RNG
    samples = op.sample_inputs("cpu", dtype, requires_grad=False)
    skipped, checked = [], 0
    for i, sample in enumerate(samples):
        if limit is not None and i >= limit:
            break
        try:
            reason = check_sample(op, sample)
        except Exception as e:
            raise AssertionError(f"sample {i}: {describe(sample)}: {type(e).__name__}: {e}") from e
        if reason:
            skipped.append(f"sample {i}: {reason}")
        else:
            checked += 1
    if not checked:
        pytest.skip("; ".join(skipped) or "no samples")




# -- in-place variants ---------------------------------------------------------------------------
def _inplace_cases():
    """Every op_db entry with an in-place variant, for float32, int64 and bool where supported."""
    cases = []
    for op in op_db:
        if op.inplace_variant is None:
            continue
        for dtype in DTYPES:
            if dtype in op.supported_dtypes("cpu"):
                name = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
                cases.append(pytest.param(op, dtype, id=f"{name}-{str(dtype).replace('torch.', '')}"))
    return cases


INPLACE_CASES = _inplace_cases()


def inplace_sample(op, sample):
    """((fn, make_inputs), None) for the in-place variant of `op` on this sample, or (None, why not).
    fn's tensor arguments are the sample's tensors; make_inputs() gives fresh equal copies."""
    from kiln_effects import clone_inputs

    flat, spec = tree_flatten((sample.input, sample.args, sample.kwargs))
    pos = [i for i, a in enumerate(flat) if isinstance(a, torch.Tensor)]
    tensors = [flat[i] for i in pos]

    def fn(*ts):
        leaves = list(flat)
        for i, t in zip(pos, ts):
            leaves[i] = t
        inp, args, kwargs = tree_unflatten(leaves, spec)
        return op.inplace_variant(inp, *args, **kwargs)

    def make():
        return clone_inputs(tensors)

    try:
        fn(*make())
    except Exception:  # noqa: BLE001  (eager rejects this sample in place: dtype or broadcast)
        return None, "eager refuses the in-place variant on this sample"
    return (fn, make), None


def random_ops(aten_gm):
    """Ops drawing random numbers (OpInfo seeds them inside the sample's call, which no graph sees)."""
    return [n.target for n in aten_gm.graph.nodes
            if n.op == "call_function" and torch.Tag.nondeterministic_seeded in getattr(n.target, "tags", ())]
