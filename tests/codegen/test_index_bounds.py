"""Out-of-range data-dependent indices, through the C++ build and Triton (interpreter on CPU).

Eager raises on them (IndexError or RuntimeError). A compiled kernel must never read out of
bounds: it reads a safe element, flags the error, and the wrapper then runs the graph eagerly,
so the caller sees eager's own exception and eager's input state (no copy-backs of ours).
"""
import warnings

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln.codegen.wrapper import build_wrapper
from kiln.backend import KilnCompileWarning, compile_fx, compile_graph
from kiln.inductor.ir import loop as L
from kiln.inductor.ir.loop import LoopOp
from kiln_testing import check

T = torch.tensor


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def _ints(*shape):
    return torch.randint(-100, 100, shape, generator=torch.Generator().manual_seed(0))


def _perm(rows, n, bad=None):
    """Each row a permutation of range(n); `bad` = (row, column, value) puts one bad index in."""
    g = torch.Generator().manual_seed(0)
    index = torch.stack([torch.randperm(n, generator=g) for _ in range(rows)])
    if bad is not None:
        index[bad[0], bad[1]] = bad[2]
    return index


# name, fn, inputs that compile (and run) fine, inputs that eager refuses (same shapes)
BAD = [
    ("gather_past_end", lambda x, i: torch.gather(x, 0, i) * 2, (_x(5), T([0, 2])), (_x(5), T([0, 7]))),
    ("gather_negative", lambda x, i: torch.gather(x, 1, i) * 2, (_x(3, 4), T([[0], [3], [1]])),
     (_x(3, 4), T([[0], [-1], [1]]))),
    ("index_select_past_end", lambda x, i: torch.index_select(x, 1, i) + 1, (_x(3, 4), T([3, 0])),
     (_x(3, 4), T([4, 0]))),
    ("index_select_negative", lambda x, i: torch.index_select(x, 0, i) + 1, (_x(3, 4), T([2])), (_x(3, 4), T([-1]))),
    ("getitem_past_end", lambda x, i: x[i] + 1, (_x(5), T([0, 4])), (_x(5), T([0, 9]))),
    ("getitem_negative", lambda x, i: x[i] + 1, (_x(5), T([0, -5])), (_x(5), T([0, -9]))),
    # only j is out of range: i*5 + j would still land inside the flattened 4*5 elements
    ("getitem_2d_only_last_dim", lambda x, i, j: x[i, j] + 1, (_x(4, 5), T([0, 1]), T([2, 4])),
     (_x(4, 5), T([0, 1]), T([2, 5]))),
    ("getitem_2d_only_last_dim_negative", lambda x, i, j: x[i, j] + 1, (_x(4, 5), T([1, 2]), T([-5, 0])),
     (_x(4, 5), T([1, 2]), T([-6, 0]))),
    ("getitem_inner_dim", lambda x, j: x[:, j] * 3, (_x(3, 4), T([3])), (_x(3, 4), T([4]))),
    ("embedding_past_end", lambda w, i: F.embedding(i, w) * 2, (_x(4, 3), T([1, 3])), (_x(4, 3), T([1, 6]))),
    ("embedding_negative", lambda w, i: F.embedding(i, w) * 2, (_x(4, 3), T([[1], [0]])), (_x(4, 3), T([[1], [-1]]))),
    ("take_past_end", lambda x, i: torch.take(x, i) + 1, (_x(4, 3), T([1, 11])), (_x(4, 3), T([1, 12]))),
    ("take_negative", lambda x, i: torch.take(x, i) + 1, (_x(4, 3), T([1, -12])), (_x(4, 3), T([1, -13]))),
    ("take_along_dim_flat", lambda x, i: torch.take_along_dim(x, i) + 1, (_x(4, 3), T([11])), (_x(4, 3), T([12]))),
    ("take_along_dim_negative", lambda x, i: torch.take_along_dim(x, i) + 1, (_x(4, 3), T([0, 3])),
     (_x(4, 3), T([0, -1]))),  # with a dim, eager wraps any index by remainder: nothing to raise
    ("index_fill_past_end", lambda x, i: x.index_fill(0, i, 2.0), (_x(4, 3), T([3])), (_x(4, 3), T([4]))),
    ("index_fill_negative", lambda x, i: x.index_fill(1, i, 2.0), (_x(4, 3), T([-3])), (_x(4, 3), T([-4]))),
    # a 0-d source: every index must be 0 (or -1 where eager wraps)
    ("gather_0d", lambda x, i: torch.gather(x, 0, i) * 2, (T(3.0), T([0, 0])), (T(3.0), T([0, 1]))),
    ("index_select_0d", lambda x, i: torch.index_select(x, 0, i) * 2, (T(3.0), T([0])), (T(3.0), T([-1]))),
    ("index_fill_0d", lambda x, i: x.index_fill(0, i, 2.0), (T(3.0), T([-1])), (T(3.0), T([1]))),
    # gathers inside reduction kernels: persistent and looped (rows longer than 4096) in Triton
    ("gather_then_sum", lambda x, i: x[i].sum(1), (_x(5, 64), T([0, 4])), (_x(5, 64), T([0, 5]))),
    # big enough for OpenMP threads (C++) and an `omp simd` reduction loop: the flag is a reduction variable
    ("gather_parallel", lambda x, i: torch.gather(x, 1, i) * 2, (_x(64, 1024), _perm(64, 1024)),
     (_x(64, 1024), _perm(64, 1024, bad=(50, 700, 1024)))),
    ("gather_then_sum_simd", lambda x, i: x[:, i].sum(1), (_ints(64, 1024), torch.arange(1023, -1, -1)),
     (_ints(64, 1024), torch.arange(1023, -1, -1).index_fill(0, T([900]), -1025))),
    # C++ loop forms: few long rows split across threads; columns (rows across memory)
    ("gather_then_sum_split_rows", lambda x, i: x[:, i].sum(1), (_ints(4, 1 << 14), torch.arange((1 << 14) - 1, -1, -1)),
     (_ints(4, 1 << 14), torch.arange((1 << 14) - 1, -1, -1).index_fill(0, T([9000]), 1 << 14))),
    ("gather_then_sum_columns", lambda x, w, i: (x * w[i]).sum(0), (_ints(1024, 64), _ints(64), torch.arange(63, -1, -1)),
     (_ints(1024, 64), _ints(64), torch.arange(63, -1, -1).index_fill(0, T([40]), -65))),
    ("rows_then_max_long_rows", lambda x, i: x[i].amax(1), (_x(3, 5000), T([0, 2])), (_x(3, 5000), T([0, 3]))),
    ("gather_then_max_long_rows", lambda x, i: x[:, i].amax(1), (_x(2, 5000), torch.arange(4999, -1, -1)),
     (_x(2, 5000), torch.arange(5000, 0, -1))),
]
GOOD = [(name, fn, good) for name, fn, good, _ in BAD]
TARGETS = ["cpp", "triton"]


def _compile(fn, inputs, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        return compile_graph(fx.symbolic_trace(fn), [t.clone() for t in inputs], target=target)


def _clones(inputs):
    return [t.clone() for t in inputs]


def _raises_like_eager(call, fn, inputs):
    """`call(*inputs)` raises eager's exception (same type and message) and leaves the inputs as
    eager leaves them."""
    eager_inputs = _clones(inputs)
    with pytest.raises(Exception) as eager:
        fn(*eager_inputs)
    ours = _clones(inputs)
    with pytest.raises(Exception) as got:
        call(*ours)
    assert type(got.value) is type(eager.value) and str(got.value) == str(eager.value)
    for a, b in zip(ours, eager_inputs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,fn,good,bad", BAD, ids=[b[0] for b in BAD])
def test_out_of_range_index_raises_as_eager(name, fn, good, bad, target):
    compiled = _compile(fn, good, target)
    check(compiled.call, fn, *good)
    _raises_like_eager(compiled.call, fn, bad)
    check(compiled.call, fn, *good)  # the flag was cleared: the next call is right again


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,fn,good,bad", BAD[:8] + BAD[-4:], ids=[b[0] for b in BAD[:8] + BAD[-4:]])
def test_the_kernel_itself_detects_the_bad_index(name, fn, good, bad, target):
    """Without an eager graph to defer to, the wrapper raises its own IndexError: so it is a
    kernel's check that found the index, not an eager run."""
    compiled = _compile(fn, good, target)
    call, _ = build_wrapper(compiled.graph, compiled.steps, compiled.backend)
    with pytest.raises(IndexError, match="compiled Kiln kernel"):
        call(*_clones(bad))
    got = call(*_clones(good))  # the flat tuple of outputs
    torch.testing.assert_close(got[0], fn(*_clones(good)))


def _unchecked_data(node, memo) -> bool:
    """Whether `node` depends on loaded data along a path with no CHECK_INDEX."""
    if node not in memo:
        if node.op is LoopOp.CHECK_INDEX:
            memo[node] = False
        elif node.op in L.LOADS:
            memo[node] = True
        else:
            memo[node] = any(_unchecked_data(a, memo) for a in node.args)
    return memo[node]


@pytest.mark.parametrize("name,fn,good,bad", BAD, ids=[b[0] for b in BAD])
def test_every_data_dependent_offset_is_checked(name, fn, good, bad):
    compiled = _compile(fn, good, "cpp")
    memo, gathers = {}, 0
    for k in compiled.kernels:
        for n in k.nodes:
            for m in L.walk(n.body):
                if m.op is LoopOp.INDIRECT_LOAD:
                    gathers += 1
                    assert not _unchecked_data(m.args[0], memo), f"unchecked offset in {k.name}: {m}"
    assert gathers or name.startswith("index_fill")


@pytest.mark.parametrize("target", TARGETS)
def test_bad_index_after_an_input_mutation_leaves_eagers_input_state(target):
    """Eager mutates x, then raises: the caller must see x mutated once (by the eager rerun), not
    twice, and none of the compiled results copied back."""
    def fn(x, i):
        x.mul_(2)
        return x[i] + 1

    good, bad = (_x(5), T([1, 4])), (_x(5), T([1, 5]))
    compiled = _compile(fn, good, target)
    ours, eagers = _clones(good), _clones(good)
    torch.testing.assert_close(compiled.call(*ours), fn(*eagers))
    torch.testing.assert_close(ours[0], eagers[0])
    _raises_like_eager(compiled.call, fn, bad)


@pytest.mark.parametrize("target", TARGETS)
def test_in_range_negative_indices_still_right(target):
    cases = [
        (lambda x, i: x[i] * 2, _x(5), T([-1, -5, 0, 4])),
        (lambda x, i, j: x[i, j], _x(3, 4), T([[-3], [2]]), T([-4, -1, 3])),
        (lambda x, i: torch.take(x, i), _x(3, 4), T([-12, -1, 11])),
        (lambda x, i: x.index_fill(1, i, -1.0), _x(3, 4), T([-4, -1])),
        (lambda x, i: torch.take_along_dim(x, i, 0), _x(3, 4), T([[-3, 5, -1, 2]])),  # eager wraps by remainder
    ]
    for fn, *inputs in cases:
        check(_compile(fn, inputs, target).call, fn, *inputs)


def test_index_error_flags_render_per_backend():
    fn, good = BAD[0][1], BAD[0][2]
    cpp = _compile(fn, good, "cpp").backend
    assert "kiln_check_index(" in cpp.source and "kiln_take_index_error" in cpp.source
    triton = _compile(fn, good, "triton").backend
    assert "km.check_index(" in triton.source and "p_kiln_index_error" in triton.source
    assert "device_assert" not in triton.source  # a no-op on GPUs without debug mode
    plain = _compile(lambda x: x.sin() + 1, (_x(4),), "cpp").backend
    assert not plain.checks_indices and "kiln_check_index" not in plain.source


# Eager checks these indices although the result is empty, or indexes a size-0 dim (where every
# index is out of range): name, fn, inputs eager accepts (None: none with this shape), inputs it refuses
EMPTY = [
    ("index_select_empty_result", lambda x, i: torch.index_select(x, 0, i), (torch.empty(3, 0), T([2, 0])),
     (torch.empty(3, 0), T([0, 3]))),
    ("index_select_empty_result_negative", lambda x, i: torch.index_select(x, 1, i), (torch.empty(0, 3), T([2])),
     (torch.empty(0, 3), T([-1]))),
    ("index_select_size0_dim", lambda x, i: torch.index_select(x, 0, i), None, (torch.empty(0, 0), T([1]))),
    ("index_select_size0_dim_rows", lambda x, i: torch.index_select(x, 0, i) + 1, None, (torch.empty(0, 3), T([0]))),
    ("embedding_empty_rows", lambda w, i: F.embedding(i, w), (torch.empty(4, 0), T([3])), (torch.empty(4, 0), T([4]))),
    ("embedding_size0_table", lambda w, i: F.embedding(i, w), None, (torch.empty(0, 0), T([0]))),
    ("gather_size0_dim", lambda x, i: torch.gather(x, 1, i), None, (torch.empty(2, 0), T([[0], [0]]))),
    ("index_fill_size0_dim", lambda x, i: x.index_fill(0, i, 2.0), None, (torch.empty(0, 3), T([0]))),
    ("getitem_size0_dim", lambda x, i: x[i] + 1, None, (torch.empty(0, 3), T([0]))),
    ("getitem_size0_inner_dim", lambda x, i: x[:, i], None, (torch.empty(0, 0), T([0]))),
    ("index_put_size0_dim", lambda x, i: x.index_put((i,), T(1.0)), None, (torch.empty(0, 3), T([0]))),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,fn,good,bad", EMPTY, ids=[e[0] for e in EMPTY])
def test_indices_eager_checks_for_an_empty_result_or_a_size0_dim(name, fn, good, bad, target):
    """A kernel over an empty result checks nothing: the indices are checked by a kernel of their
    own (check_index_all), so the graph compiles (no fallback) and raises eager's error (fuzzer F8)."""
    compiled = _compile(fn, good or bad, target)
    if good is not None:
        check(compiled.call, fn, *good)
    _raises_like_eager(compiled.call, fn, bad)
    if good is not None:
        check(compiled.call, fn, *good)


def test_indexing_an_empty_dim_compiles_and_raises_eagers_error():
    fn = lambda x, i: x[i] + 1  # noqa: E731
    x, i = torch.empty(0, 3), T([0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnCompileWarning)
        call = compile_fx(fx.symbolic_trace(fn), [x, i])
    with pytest.raises(IndexError, match="size 0"):
        call(x, i)


@pytest.mark.parametrize("target", TARGETS)
def test_a_later_step_failing_on_stand_in_values_still_gives_eagers_error(target):
    """A bad gather index reads element 0 instead; an extern fed those stand-ins may raise its own
    error before the wrapper reads the flag. The caller must still see eager's (the gather's)."""
    def fn(x, i, j):
        k = torch.gather(j, 0, i)
        return torch.zeros(3).index_add(0, k, x)

    good = (_x(2), T([1, 2]), T([7, 0, 1]))  # j[0] = 7 is a bad index_add position: read only for a bad i
    bad = (_x(2), T([1, 3]), T([7, 0, 1]))
    compiled = _compile(fn, good, target)
    assert "(extern)" in repr(compiled.steps[-2:])  # index_add runs after the gather's kernel
    check(compiled.call, fn, *good)
    _raises_like_eager(compiled.call, fn, bad)


@pytest.mark.parametrize("target", TARGETS)
def test_index_error_flags_are_per_thread(target):
    """A kernel's error belongs to the thread that ran it: another thread's read (after it, while
    it waits) neither sees nor clears it. ctypes releases the GIL, so two threads' C++ kernels can
    overlap; a shared flag would hand one thread's error to the other and lose it for the first."""
    import threading

    from kiln.codegen import index_check
    from kiln.codegen.wrapper import WrapperCode

    fn, good, bad = BAD[0][1], BAD[0][2], BAD[0][3]
    compiled = _compile(fn, good, target)
    code = WrapperCode(compiled.graph, compiled.steps, compiled.backend)
    source = code.generate()
    kernels_only = "\n".join(line for line in source.splitlines()  # the wrapper minus its flag check
                             if f"if {index_check.FLAG_READER}()" not in line and index_check.ON_ERROR not in line)
    assert kernels_only.count("kernel0(") == 1
    namespace = {**code.globals, **compiled.backend.globals()}
    exec(compile(kernels_only, "<kernels only>", "exec"), namespace)
    run_kernels, read = namespace["call"], namespace[index_check.FLAG_READER]
    ran, other_read, seen = threading.Event(), threading.Event(), {}

    def thread_a():
        run_kernels(*_clones(bad))
        ran.set()
        other_read.wait(30)
        seen["a"], seen["a_again"] = read(), read()

    def thread_b():
        ran.wait(30)
        seen["b"] = read()
        other_read.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"b": False, "a": True, "a_again": False}
