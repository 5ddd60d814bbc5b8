"""In-place ops, input mutations and output aliasing through the whole back end: the generated
wrapper copies new values into the caller's inputs after the kernels and returns views where eager
returns views. Compared with eager on outputs, every input's final state, and aliasing (storage
sharing and offsets), for the C++ and Triton targets, through compile_fx, torch.compile and
capture.compile."""
import re
import warnings

import pytest
import torch

from kiln import capture
from kiln import prims
from effect_cases import CASES, REFUSED, batch_norm_inputs, batch_norm_training
from kiln.backend import KilnCompileWarning, compile_fx, compile_graph
from kiln_effects import check_effects, graph_of
from kiln_opinfo import INPLACE_CASES, inplace_sample, random_ops, run_samples
from kiln import config

def _compiled(name, target):
    fn, make = CASES[name]
    return compile_graph(graph_of(fn, len(make())), make(), target=target), fn, make


@pytest.mark.parametrize("name", CASES)
def test_cpp_matches_eager_effects(name):
    compiled, fn, make = _compiled(name, "cpp")
    check_effects(compiled.call, fn, make)


@pytest.mark.parametrize("name", CASES)
def test_triton_matches_eager_effects(name):
    compiled, fn, make = _compiled(name, "triton")
    check_effects(compiled.call, fn, make)


def test_wrapper_copies_back_after_the_kernels_and_views_inputs():
    compiled, fn, make = _compiled("mutated_input_returned_with_views", "cpp")
    lines = compiled.wrapper_source.splitlines()
    copy = next((i for i, l in enumerate(lines) if ".copy_(" in l), None)
    if copy is None:  # the kernel writes the new value into the input itself (codegen/in_place.py)
        assert any(re.match(r"\s+buf\d+ = in_x0$", line) for line in lines), compiled.wrapper_source
    else:
        assert copy > max(i for i, l in enumerate(lines) if "kernel" in l)
        assert "in_x0.copy_(" in lines[copy]
    assert "as_strided(in_x0, (4, 3), (1, 4), in_x0.storage_offset() + 0)" in compiled.wrapper_source
    x = make()[0]
    out = compiled.call(x)
    assert out[0] is x
    out[1][0, 0] = 100.0  # a view of the input: writing it writes the input
    assert x[0, 0] == 100.0 and out[2].data_ptr() == x.data_ptr() + 2 * x.element_size()


def test_views_of_one_intermediate_share_one_base_buffer():
    compiled, fn, make = _compiled("views_of_hidden_intermediate", "cpp")
    t, row, rest = compiled.call(*make())
    assert t.untyped_storage().data_ptr() == row.untyped_storage().data_ptr() == rest.untyped_storage().data_ptr()
    row.fill_(7)
    assert (t[:, 0] == 7).all() and rest.storage_offset() == 4


def test_dump_shows_copy_backs_and_aliases(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "dump_dir", str(tmp_path))
    compiled, _, _ = _compiled("mutated_input_returned_with_views", "cpp")
    d = compiled.dump_dir
    assert "aten.mul_.Tensor" in (d / "1_aten_graph.py").read_text()
    functional = (d / "1_aten_functional.py").read_text()
    assert "aten.mul_" not in functional and "input 0 (x0) <- output 3" in functional
    assert "view of input 0: size [4, 3], stride [1, 4]" in (d / "2_prims_graph.py").read_text()
    assert "input mutations: x0 <- buf" in (d / "3_loop_ir.txt").read_text()
    wrapper = (d / "6_wrapper.py").read_text()
    assert "in_x0.copy_(" in wrapper or re.search(r"buf\d+ = in_x0\n", wrapper), wrapper  # copied back, or written in place


@pytest.mark.parametrize("name", REFUSED)
def test_refused_programs_run_eagerly_with_one_warning(name, monkeypatch):
    fn, make, why = REFUSED[name]
    with pytest.warns(KilnCompileWarning, match=why) as record:
        call = compile_fx(graph_of(fn, len(make())), make())
    assert len([r for r in record if issubclass(r.category, KilnCompileWarning)]) == 1
    check_effects(call, fn, make)
    monkeypatch.setattr(config, "strict", True)
    with pytest.raises(Exception, match=why):
        compile_fx(graph_of(fn, len(make())), make())


def testbatch_norm_training_through_compile_fx():
    with warnings.catch_warnings():  # multi-output ATen fallbacks may still make it run eagerly
        warnings.simplefilter("ignore", KilnCompileWarning)
        call = compile_fx(graph_of(batch_norm_training, 5), batch_norm_inputs())
    check_effects(call, batch_norm_training, batch_norm_inputs)


def test_fallback_results_that_view_inputs_are_never_reused():
    def fn(x, w):  # unfold is an ATen fallback whose result views x; its storage must not be recycled
        m = x.unfold(0, 2, 2) @ w
        return (m @ w).sum(), x.sum()

    make = lambda: [torch.arange(8.0), torch.eye(2) * 2]  # noqa: E731
    compiled = compile_graph(graph_of(fn, 2), make(), target="cpp")
    check_effects(compiled.call, fn, make)


# -- PyTorch's front end hands Kiln graphs with in-place ops, input mutations and aliased outputs ------
def _dynamo_cases():
    def bump(x, y):
        x.add_(1)
        y[0] = 3
        x[:, 1:] *= 2
        return x.t(), y.view(-1)

    def relu_views(x):
        torch.relu_(x)
        x.t().mul_(2)
        return x

    def running_mean(stat, x):  # a batch-norm style buffer update
        stat.mul_(0.9).add_(x.mean(0), alpha=0.1)
        return x - stat

    def ints(i, m):
        i[m] = 0
        i += 1
        return i.view(-1)[1:]

    def r(*shape):
        return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))

    return {"bump": (bump, lambda: [r(4, 3).t(), r(3, 4)]), "relu_views": (relu_views, lambda: [r(3, 4)]),
            "running_mean": (running_mean, lambda: [r(4), r(8, 4)]),
            "ints": (ints, lambda: [torch.arange(12).reshape(3, 4), torch.arange(12).reshape(3, 4) % 3 == 0])}


DYNAMO = _dynamo_cases()


@pytest.mark.parametrize("name", DYNAMO)
def test_torch_compile_with_kiln_keeps_eager_effects(name):
    torch._dynamo.reset()
    fn, make = DYNAMO[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        compiled = torch.compile(fn, backend="kiln")
        for _ in range(2):
            check_effects(compiled, fn, make)


def test_torch_compile_module_updating_a_buffer():
    torch._dynamo.reset()

    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("seen", torch.zeros(4))

        def forward(self, x):
            self.seen.add_(x.sum(0))
            return x * 2

    eager, kiln = Counter(), Counter()
    compiled = torch.compile(kiln, backend="kiln")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        for _ in range(3):
            x = torch.randn(5, 4)
            torch.testing.assert_close(compiled(x), eager(x))
    torch.testing.assert_close(kiln.seen, eager.seen)


def test_capture_compile_returns_views_of_inputs():
    def fn(x):
        y = x * 2
        return x.t(), x[1:], y, y.view(-1)

    make = lambda: [torch.randn(3, 4, generator=torch.Generator().manual_seed(0))]  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = capture.compile(fn, backend="kiln", fullgraph=True)
        check_effects(compiled, fn, make)


# -- OpInfo in-place variants through the C++ and Triton back ends ----------------------------------
def _check_inplace_cpp(op, sample, target="cpp"):
    made, why_not = inplace_sample(op, sample)
    if made is None:
        return why_not
    fn, make = made
    gm = graph_of(fn, len(make()))
    try:
        if random_ops(prims.trace_aten(gm, make())):
            return "random ops"
        compiled = compile_graph(gm, make(), target=target)
    except prims.UnsupportedGraph as e:
        return f"unsupported: {e}"
    check_effects(compiled.call, fn, make)
    return None


def _check_inplace_triton(op, sample):
    return _check_inplace_cpp(op, sample, "triton")


@pytest.mark.parametrize("op, dtype", INPLACE_CASES[5::13])  # another spread than the C++ one
def test_opinfo_inplace_triton_fast(op, dtype):
    run_samples(op, dtype, 1, _check_inplace_triton)


@pytest.mark.slow
@pytest.mark.parametrize("op, dtype", INPLACE_CASES)
def test_opinfo_inplace_triton_full(op, dtype):
    run_samples(op, dtype, None, _check_inplace_triton)


@pytest.mark.parametrize("op, dtype", INPLACE_CASES[3::13])  # a deterministic spread for the default run
def test_opinfo_inplace_cpp_fast(op, dtype):
    run_samples(op, dtype, 1, _check_inplace_cpp)


@pytest.mark.slow
@pytest.mark.parametrize("op, dtype", INPLACE_CASES)
def test_opinfo_inplace_cpp_full(op, dtype):
    run_samples(op, dtype, None, _check_inplace_cpp)


# -- OpInfo view ops: outputs alias their inputs exactly as eager's do ---------------------------------
VIEW_OPS = ["view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "unsqueeze", "squeeze",
            "expand", "expand_as", "narrow", "select", "__getitem__", "contiguous", "split", "split_with_sizes",
            "chunk", "unbind", "diagonal", "movedim", "flatten", "unflatten", "tensor_split", "hsplit", "vsplit",
            "dsplit", "ravel", "unfold", "as_strided", "T", "mT", "real"]


def _view_cases():
    from torch.testing._internal.common_methods_invocations import op_db

    ops = [op for op in op_db if op.name in VIEW_OPS]
    assert {op.name for op in ops} == set(VIEW_OPS), set(VIEW_OPS) - {op.name for op in ops}
    return [pytest.param(op, id=op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")) for op in ops]


def _check_view_aliasing(target, op, sample):
    from kiln_effects import clone_inputs
    from kiln_opinfo import graph_of as opinfo_graph

    gm, inputs, call = opinfo_graph(op, sample, clone_views=False)
    make = lambda: clone_inputs(inputs)  # noqa: E731
    try:
        if target == "prims":
            pg = prims.lower(gm, make())
            run = lambda *xs: prims.call_with_effects(pg, list(xs))  # noqa: E731
        else:
            run = compile_graph(gm, make(), target=target).call
    except prims.UnsupportedGraph as e:
        return f"unsupported: {e}"
    check_effects(run, call, make)
    return None


@pytest.mark.parametrize("target, limit", [("prims", None), ("cpp", 2), ("triton", 2)])
@pytest.mark.parametrize("op", _view_cases())
def test_opinfo_view_outputs_alias_like_eager(op, target, limit):
    run_samples(op, torch.float32, limit, lambda op, sample: _check_view_aliasing(target, op, sample))


def test_non_finite_float_arguments_of_fallbacks_render():
    fn = lambda x: torch.renorm(x, float("inf"), 0, 0.5) + 1  # noqa: E731  (renorm runs as an ATen fallback)
    make = lambda: [torch.randn(3, 4, generator=torch.Generator().manual_seed(0))]  # noqa: E731
    check_effects(compile_graph(graph_of(fn, 1), make(), target="cpp").call, fn, make)
