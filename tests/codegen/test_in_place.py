"""Input writes done in place (codegen/in_place.py): the kernel computing a mutated input's new
value writes it into the input, with no buffer and no copy-back, only when that cannot change any
result; every case against eager, inputs included."""
import re

import pytest
import torch
import torch.fx as fx

from kiln.backend import compile_graph


def _run(fn, inputs):
    gm = fx.symbolic_trace(fn)
    compiled = compile_graph(gm, [t.clone() for t in inputs], target="cpp")
    ours, theirs = [t.clone() for t in inputs], [t.clone() for t in inputs]
    got, expected = compiled.call(*ours), fn(*theirs)
    torch.testing.assert_close(got, expected, equal_nan=True)
    torch.testing.assert_close(ours, theirs, equal_nan=True)  # the inputs written, as eager writes them
    return compiled.wrapper_source, got, ours


def _copy_backs(source):
    return re.findall(r"in_\w+\.copy_\(", source)


def _bound_to_inputs(source):
    return re.findall(r"^\s+buf\d+ = in_\w+", source, re.M)


def adam_like(p, m, g):
    m.mul_(0.9).add_(g, alpha=0.1)
    p.add_(m / (g.abs() + 1e-8), alpha=-0.01)
    return ()


def test_optimizer_like_writes_need_no_copy_back():
    inputs = [torch.randn(64, 33), torch.randn(64, 33), torch.randn(64, 33)]
    inputs[2][0, :3] = torch.tensor([float("inf"), float("nan"), -0.0])
    source, _, _ = _run(adam_like, inputs)
    # p's new value is written into p; m's old value is also read for p's update (a load its own
    # store does not depend on), so m keeps its buffer and copy-back
    assert _bound_to_inputs(source) == ["    buf1 = in_p"] and _copy_backs(source) == ["in_m.copy_("], source


def test_new_value_laid_out_otherwise_keeps_its_copy_back():
    """The new value's buffer is row-major, the input transposed: the copy-back transposes it."""
    def f(x, y):
        x.mul_(2).add_(y)
        return ()

    source, _, _ = _run(f, [torch.randn(8, 12).t(), torch.randn(12, 8)])
    assert _copy_backs(source) and not _bound_to_inputs(source), source


def test_a_store_that_does_not_read_the_old_value_keeps_its_copy_back():
    """The old x feeds another output only: under __restrict__ pointers the compiler could load x
    after the store, so the new value goes through a buffer."""
    def f(x, y):
        out = x + 1
        x.copy_(y * 3)
        return (out,)

    source, (out,), _ = _run(f, [torch.randn(16), torch.randn(16)])
    assert _copy_backs(source), source


def test_new_value_also_returned_stays_a_fresh_tensor():
    def f(x):
        y = x * 2
        x.copy_(y)
        return (y,)

    source, (y,), (x,) = _run(f, [torch.randn(10)])
    assert y.data_ptr() != x.data_ptr() and _copy_backs(source)


def test_old_value_read_by_another_kernel_is_read_before_the_write():
    def f(x):
        s = x.sum(0)
        x.mul_(2)
        return (s, x.amax(1))

    _run(f, [torch.randn(6, 40)])


def test_neighbouring_elements_read_keep_the_copy_back():
    def f(x):
        x.copy_(x.roll(1, 0) + x)
        return ()

    source, _, _ = _run(f, [torch.randn(32)])
    assert _copy_backs(source), source


@pytest.mark.parametrize("shape", [(), (0, 3), (1,)])
def test_zero_dim_and_empty_inputs(shape):
    _run(adam_like, [torch.randn(shape), torch.randn(shape), torch.randn(shape)])


def test_inputs_sharing_memory_keep_the_copy_back():
    def f(x, y):
        x.add_(1)
        return (y * 2,)

    base = torch.randn(20)
    gm = fx.symbolic_trace(f)
    compiled = compile_graph(gm, [base[:10], base[5:15]], target="cpp")
    a, b = base.clone()[:10], None
    shared = base.clone()
    got = compiled.call(shared[:10], shared[5:15])
    expected_base = base.clone()
    expected = f(expected_base[:10], expected_base[5:15])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(shared, expected_base)


def test_fast_path_kernel_redone_exactly_keeps_its_copy_back():
    """sin's fast path flags an input out of its domain and reruns the kernel with libm: the rerun
    must read the old values (fuzzer seed 338)."""
    def f(x):
        x.sin_()
        return ()

    x = torch.tensor([0.5, 3.4028234663852886e38, -2.0, 1e30])
    source, _, _ = _run(f, [x])
    assert _copy_backs(source), source


def _eager_error_after_the_write(fn, inputs, error):
    """The compiled call fails after the write; the back end reruns the graph eagerly, which must see
    the caller's values: the input ends written once, as eager leaves it."""
    from kiln.backend import compile_fx

    call = compile_fx(fx.symbolic_trace(fn), [t.clone() for t in inputs])
    ours, theirs = [t.clone() for t in inputs], [t.clone() for t in inputs]
    with pytest.raises(error):
        fn(*theirs)
    with pytest.raises(error):
        call(*ours)
    torch.testing.assert_close(ours, theirs)


def test_bad_index_after_the_write_sees_the_callers_values():
    def f(x, idx):
        x.mul_(2).add_(1)
        return (torch.gather(x, 0, idx),)

    _eager_error_after_the_write(f, [torch.randn(5), torch.tensor([0, 7])], RuntimeError)


def test_library_call_raising_after_the_write_sees_the_callers_values():
    def f(x, w):
        x.add_(1)
        return (torch.linalg.cholesky(w * x[0]),)

    _eager_error_after_the_write(f, [torch.ones(3), -torch.eye(3)], torch.linalg.LinAlgError)
