"""OpInfo samples as tiny torch-level graphs, shared by the prims and codegen sweeps.

PyTorch's OpInfo database is the source of op samples: each sample becomes an fx graph whose
tensor arguments are graph inputs (non-tensor arguments are baked in).
"""
import operator
from dataclasses import dataclass

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

# Ops covered since the prim set grew (issue 5). Their default runs are batched: one graph per group
# of ops holds every op's first samples, so the default suite builds a few C++ files, not hundreds.
NEW_OPS = [
    ("asin", ""), ("acos", ""), ("atan", ""), ("sinh", ""), ("cosh", ""), ("asinh", ""), ("acosh", ""),
    ("atanh", ""), ("exp2", ""), ("log2", ""), ("log10", ""), ("erfc", ""), ("bitwise_not", ""), ("isnan", ""),
    ("isinf", ""), ("isposinf", ""), ("isneginf", ""), ("isfinite", ""), ("signbit", ""), ("deg2rad", ""),
    ("rad2deg", ""), ("frac", ""), ("sgn", ""), ("positive", ""), ("nan_to_num", ""), ("sinc", ""),
    ("special.entr", ""), ("logit", ""), ("round", "decimals_3"), ("round", "decimals_neg_3"), ("bitwise_and", ""),
    ("bitwise_or", ""), ("bitwise_xor", ""), ("bitwise_left_shift", ""), ("bitwise_right_shift", ""),
    ("atan2", ""), ("fmod", ""), ("remainder", ""), ("copysign", ""), ("hypot", ""), ("logical_xor", ""),
    ("div", "floor_rounding"), ("div", "trunc_rounding"), ("floor_divide", ""), ("fmax", ""), ("fmin", ""),
    ("heaviside", ""), ("lerp", ""), ("logaddexp", ""), ("logaddexp2", ""), ("xlogy", ""), ("special.xlog1py", ""),
    ("addcmul", ""), ("addcdiv", ""), ("ldexp", ""), ("float_power", ""), ("cat", ""), ("constant_pad_nd", ""),
    ("nn.functional.pad", "constant"), ("flip", ""), ("roll", ""), ("rot90", ""), ("gather", ""),
    ("index_select", ""), ("take", ""), ("take_along_dim", ""), ("nn.functional.embedding", ""),
    ("masked_fill", ""), ("index_fill", ""), ("stack", ""), ("split", ""), ("split_with_sizes", ""), ("chunk", ""),
    ("unbind", ""), ("diagonal", ""), ("diag", ""), ("unfold", ""), ("trace", ""), ("diag_embed", ""),
    ("tril", ""), ("triu", ""), ("eye", ""), ("arange", ""), ("linspace", ""), ("logspace", ""), ("repeat", ""),
    ("tile", ""), ("nn.functional.pixel_shuffle", ""), ("nn.functional.pixel_unshuffle", ""),
    ("slice_scatter", ""), ("select_scatter", ""), ("empty", ""), ("empty_like", ""), ("fill", ""),
    ("block_diag", ""), ("kron", ""), ("meshgrid", "variadic_tensors"), ("std", ""), ("std_mean", ""), ("any", ""),
    ("all", ""), ("count_nonzero", ""), ("nansum", ""), ("aminmax", ""), ("logsumexp", ""),
    ("linalg.vector_norm", ""), ("norm", ""), ("dist", ""), ("renorm", ""), ("nn.functional.group_norm", ""),
    ("nn.functional.normalize", ""), ("nn.functional.elu", ""), ("nn.functional.celu", ""),
    ("nn.functional.selu", ""), ("nn.functional.hardtanh", ""), ("nn.functional.leaky_relu", ""),
    ("nn.functional.hardsigmoid", ""), ("nn.functional.hardswish", ""), ("nn.functional.softplus", ""),
    ("nn.functional.mish", ""), ("nn.functional.logsigmoid", ""), ("nn.functional.threshold", ""),
    ("nn.functional.softshrink", ""), ("nn.functional.hardshrink", ""), ("nn.functional.glu", ""),
    ("nn.functional.prelu", ""), ("nn.functional.mse_loss", ""), ("nn.functional.smooth_l1_loss", ""),
    ("nn.functional.huber_loss", ""), ("nn.functional.soft_margin_loss", ""),
    ("nn.functional.binary_cross_entropy", ""), ("nn.functional.binary_cross_entropy_with_logits", ""),
    ("addmv", ""), ("addr", ""), ("addbmm", ""), ("_unsafe_masked_index", ""), ("sort", ""), ("topk", ""),
    ("cumsum", ""), ("linalg.qr", ""), ("linalg.cholesky", ""), ("nn.functional.conv2d", ""),
    ("nn.functional.max_pool2d", ""), ("scatter_add", ""), ("lgamma", ""), ("randn", ""), ("rand_like", ""),
    ("bernoulli", ""), ("randint", ""), ("normal", ""),
]

DTYPES = [torch.float32, torch.int64, torch.bool]
FAST_SAMPLES = 6  # samples per (op, dtype) in the default run (reaches the 0-d and empty samples)


def selected(ops=OPS):
    by_key = {(op.name, op.variant_test_name): op for op in op_db}
    missing = [k for k in ops if k not in by_key]
    assert not missing, f"OpInfos not in op_db: {missing}"
    cases = []
    for key in ops:
        op = by_key[key]
        supported = op.supported_dtypes("cpu")
        for dtype in DTYPES:
            if dtype in supported:
                name = key[0] + (f".{key[1]}" if key[1] else "")
                cases.append(pytest.param(op, dtype, id=f"{name}-{str(dtype).replace('torch.', '')}"))
    return cases


CASES = selected()
NEW_CASES = selected(NEW_OPS)

# Complex ops computed on (real, imag) pairs (prims/decomp/complex.py): op -> the dtypes its samples
# run in (polar, complex and view_as_complex take real tensors and make complex ones).
COMPLEX_OPS = {
    **{key: (torch.complex64, torch.complex128) for key in [
        ("add", ""), ("sub", ""), ("mul", ""), ("rsub", ""), ("div", "no_rounding_mode"), ("true_divide", ""),
        ("reciprocal", ""), ("eq", ""), ("ne", ""), ("neg", ""), ("conj", ""), ("conj_physical", ""),
        ("resolve_conj", ""), ("abs", ""), ("angle", ""), ("real", ""), ("imag", ""), ("view_as_real", ""),
        ("sum", ""), ("view", ""), ("reshape", ""), ("permute", ""), ("transpose", ""), ("t", ""),
        ("unsqueeze", ""), ("squeeze", ""), ("expand", ""), ("select", ""), ("narrow", ""), ("flip", ""),
        ("cat", ""), ("clone", ""), ("contiguous", ""), ("index_select", "")]},
    **{key: (torch.float32, torch.float64) for key in [("polar", ""), ("complex", ""), ("view_as_complex", "")]},
}


def complex_cases():
    by_key = {(op.name, op.variant_test_name): op for op in op_db}
    missing = [k for k in COMPLEX_OPS if k not in by_key]
    assert not missing, f"OpInfos not in op_db: {missing}"
    return [pytest.param(by_key[key], dtype, id=f"{key[0]}-{str(dtype)[6:]}")
            for key, dtypes in COMPLEX_OPS.items() for dtype in dtypes if dtype in by_key[key].supported_dtypes("cpu")]


COMPLEX_CASES = complex_cases()
ALL_CASES = CASES + NEW_CASES
BATCH_OPS = 24  # ops per batched graph
BATCH_SAMPLES = 3  # first samples of each op in a batched graph


RANDOM_OPS = {"randn", "rand_like", "bernoulli", "randint", "normal"}  # batched apart: compared by shape


def batches():
    """pytest params (ops, dtype): NEW_OPS in groups of BATCH_OPS, per dtype the ops support."""
    out = []
    for dtype in DTYPES:
        ops = [c.values[0] for c in NEW_CASES if c.values[1] == dtype]
        plain = [op for op in ops if op.name not in RANDOM_OPS]
        groups = [plain[i:i + BATCH_OPS] for i in range(0, len(plain), BATCH_OPS)]
        groups += [[op for op in ops if op.name in RANDOM_OPS]]
        for group in filter(None, groups):
            out.append(pytest.param(group, dtype, id=f"{group[0].name}..{group[-1].name}-{str(dtype)[6:]}"))
    return out


BATCHES = batches()


def op_label(op):
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def batched_samples(ops, dtype, per_op=BATCH_SAMPLES):
    """[(label, op, sample)]: each op's first samples."""
    items = []
    for op in ops:
        torch.manual_seed(0)
        for i, sample in zip(range(per_op), op.sample_inputs("cpu", dtype, requires_grad=False)):
            items.append((f"{op_label(op)} sample {i} {describe(sample)}", op, sample))
    return items


def combined_graph(items):
    """(GraphModule, inputs, call, spans, items): one torch-level graph computing every item's
    sample that eager can run (the others are dropped: nothing to compare); spans[i] = (label,
    first output, number of outputs) names what went wrong."""
    parts, kept, spans, count = [], [], [], 0
    torch.manual_seed(0)
    for item in items:
        gm, xs, fn = graph_of(item[1], item[2])
        try:
            n = len(fn(*clones(xs)))
        except Exception:  # noqa: BLE001 - eager cannot run it (see `n/a` in tests/prims_coverage.py)
            continue
        spans.append((item[0], count, n))
        count += n
        parts.append((xs, fn))
        kept.append(item)
    inputs = [x for xs, _ in parts for x in xs]

    def call(*tensors):
        outs, pos = [], 0
        for xs, fn in parts:
            outs.extend(fn(*tensors[pos:pos + len(xs)]))
            pos += len(xs)
        return tuple(outs)

    graph = fx.Graph()
    placeholders = [graph.placeholder(f"x{i}") for i in range(len(inputs))]
    graph.output(graph.call_function(call, tuple(placeholders)))
    return fx.GraphModule(torch.nn.Module(), graph), inputs, call, spans, kept


def check_effects_spans(run, call, inputs, aten_gm, spans):
    """check_effects for a combined graph: a failure names the op and sample."""
    try:
        check_effects(run, call, inputs, aten_gm)
    except AssertionError:  # find the culprit for the message
        mine, theirs = clones(inputs), clones(inputs)
        torch.manual_seed(0)
        expected = call(*theirs)
        torch.manual_seed(0)
        compare_spans(run(mine), expected, spans, unspecified_outputs(aten_gm))
        raise


def compare_spans(got, expected, spans, unspecified=()):
    """compare(), op by op, so a failure names the op and sample."""
    assert len(got) == len(expected), (len(got), len(expected))
    for label, start, n in spans:
        mine = {i - start for i in unspecified if start <= i < start + n}
        try:
            compare(got[start:start + n], expected[start:start + n], mine)
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}") from e


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


# --- the prims check, shared by tests/prims/test_opinfo.py and tests/prims_coverage.py ------------


@dataclass
class PrimsResult:
    """How one sample went through trace -> decompose -> reference prims.

    status: "prims" (only prims, eager's values), "fallback" (ran correctly, but through
    kiln.fallback nodes), "unsupported" (Kiln refused the graph: UnsupportedGraph), "fail", or
    "n/a" (eager itself fails on this sample, e.g. a CUDA-only op).
    """
    status: str
    detail: str = ""
    fallbacks: tuple = ()  # ATen ops that became fallback nodes
    externs: tuple = ()  # extern prims used
    random: bool = False  # the op draws random numbers: values are not compared with eager's stream


_aten = torch.ops.aten
EMPTY_OPS = {_aten.empty.memory_format, _aten.empty_strided.default, _aten.empty_like.default, _aten.new_empty.default,
             _aten.new_empty_strided.default, _aten.empty_permuted.default}


def _unspecified_outputs(aten_gm) -> set:
    """Output positions eager leaves uninitialized (empty*): only their shapes and dtypes mean something."""
    out = next(n for n in aten_gm.graph.nodes if n.op == "output")
    passes = {_aten.detach.default, _aten.alias.default, _aten.clone.default, _aten.view.default}

    def source(a):
        while isinstance(a, torch.fx.Node) and a.target in passes:
            a = a.args[0]
        return a

    return {i for i, a in enumerate(out.args[0]) if isinstance(source(a), torch.fx.Node) and source(a).target in EMPTY_OPS}


def _is_random(aten_gm) -> bool:
    return any(n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)
               and torch.Tag.nondeterministic_seeded in n.target.tags for n in aten_gm.graph.nodes)


def unspecified_outputs(aten_gm) -> set:
    """Output positions whose values eager does not define (random draws, empty tensors)."""
    out = next(n for n in aten_gm.graph.nodes if n.op == "output")
    return set(range(len(out.args[0]))) if _is_random(aten_gm) else _unspecified_outputs(aten_gm)


def compare(got, expected, unspecified=()):
    """Eager's values, dtypes and shapes: exact for ints and bools, default tolerances for floats.
    Outputs in `unspecified` are compared by shape and dtype only."""
    assert len(got) == len(expected), (len(got), len(expected))
    blank = lambda ts: [t.new_zeros(()).expand(t.shape) if i in unspecified else t for i, t in enumerate(ts)]  # noqa: E731
    got, expected = blank(got), blank(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        exact = not (e.dtype.is_floating_point or e.dtype.is_complex)
        torch.testing.assert_close(g, e, equal_nan=True, **({"rtol": 0, "atol": 0} if exact else {}))


def clones(tensors):
    return [t.clone() for t in tensors]


def check_effects(run, call, inputs, aten_gm):
    """Run Kiln (`run(inputs)`, on copies) and eager (`call`, on copies): outputs and every input
    afterwards (in-place ops mutate them) must agree. Random draws and empty tensors compare by
    shape and dtype only (eager's RNG stream is not Kiln's; empty memory holds anything)."""
    mine, theirs = clones(inputs), clones(inputs)
    torch.manual_seed(0)
    expected = call(*theirs)
    torch.manual_seed(0)
    got = run(mine)
    unspecified = unspecified_outputs(aten_gm)
    compare(got, expected, unspecified)
    compare(mine, theirs, set(range(len(mine))) if _is_random(aten_gm) else ())


def check_prims(op, sample) -> PrimsResult:
    """One OpInfo sample through prims.trace_aten -> prims.decompose -> the prims' references
    (run with the graph's effects: input copy-backs, output aliasing), compared with eager."""
    from kiln import prims

    gm, inputs, call = graph_of(op, sample)
    torch.manual_seed(0)
    try:
        call(*clones(inputs))
    except Exception as e:  # noqa: BLE001 - e.g. CUDA-only ops: nothing to compare with
        return PrimsResult("n/a", f"eager fails: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    try:
        aten_gm = prims.trace_aten(gm, clones(inputs))
        pg = prims.decompose(aten_gm)
    except prims.UnsupportedGraph as e:  # data-dependent shapes, resize_, hidden aliases
        return PrimsResult("unsupported", str(e))
    calls = [n for n in pg.graph.nodes if n.op == "call_function" and n.target is not operator.getitem]
    bad = [n.target for n in calls if not isinstance(n.target, prims.Prim)]
    if bad:
        return PrimsResult("fail", f"non-prim targets in the prims graph: {bad}")
    fallbacks = tuple(sorted({str(n.args[0]) for n in calls if n.target is prims.PRIMS["fallback"]}))
    externs = tuple(sorted({n.target.name for n in calls if n.target.category is prims.Category.EXTERN}))
    random = _is_random(aten_gm)
    try:
        check_effects(lambda xs: prims.call_with_effects(pg, xs), call, inputs, aten_gm)
    except AssertionError as e:
        return PrimsResult("fail", f"mismatch: {str(e).splitlines()[0] if str(e) else e!r}", fallbacks, externs, random)
    return PrimsResult("fallback" if fallbacks else "prims", "", fallbacks, externs, random)


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
