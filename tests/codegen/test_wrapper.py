"""The generated wrapper: printable, eager's output identity and strides, freed intermediates."""
import pytest
import torch
import torch.fx as fx

from kiln.codegen import alloc
from kiln.backend import compile_graph


def _compile(fn, *inputs, target="cpp"):
    return compile_graph(fx.symbolic_trace(fn), list(inputs), target=target)


def test_wrapper_is_readable_python():
    c = _compile(lambda x, w: torch.relu(x @ w).sum(1), torch.randn(4, 8), torch.randn(8, 3))
    src = c.wrapper_source
    assert src.startswith("def call(") and "torch.matmul(" in src and "kernel0(" in src and "return (" in src
    compile(src, "<wrapper>", "exec")


def test_returning_an_input_returns_that_object():
    x = torch.randn(3)
    c = _compile(lambda x: (x, x * 2), x)
    out = c.call(x)
    assert out[0] is x


def test_same_output_twice_is_one_object_and_clones_are_not():
    x = torch.randn(3, 4)

    def f(x):
        y = x + 1
        return y, y, y.clone()

    a, b, c = _compile(f, x).call(x)
    assert a is b and c is not a
    torch.testing.assert_close(c, a)


def test_intermediates_are_freed():
    c = _compile(lambda x: ((x @ x).relu() @ x).sum(), torch.randn(8, 8))
    assert "del buf" in c.wrapper_source


def test_outputs_have_eager_strides():
    x = torch.randn(4, 6)
    out = _compile(lambda x: ((x + 1).t(), x.sum(0, keepdim=True)), x).call(x)
    assert out[0].stride() == (1, 6) and out[1].shape == (1, 6)


@pytest.mark.parametrize("rows", [1024, 128], ids=["4MB", "512KB"])
def test_large_buffers_are_reused_only_when_the_caller_let_go(rows):
    x = torch.randn(rows, 1024)  # pooled (POOL_MIN_BYTES and more)
    c = _compile(lambda x: (x * 2, torch.softmax(x, -1)), x)
    first = c.call(x)
    ptrs = [t.data_ptr() for t in first]
    second = c.call(x)  # the first call's outputs are still held: new storage
    assert not {t.data_ptr() for t in second} & set(ptrs)
    torch.testing.assert_close(first, second)
    view = first[0][10:]  # a view keeps that storage busy too
    del first, second
    third = c.call(x)
    got = {t.data_ptr() for t in third}
    assert ptrs[0] not in got and ptrs[1] in got  # the viewed storage is busy; the other one is reused
    torch.testing.assert_close(third, (x * 2, torch.softmax(x, -1)))
    assert view.data_ptr() == ptrs[0] + 10 * 1024 * 4



def test_pool_keeps_mid_size_buffers_not_small_ones():
    """Buffers from malloc's mmap range (512 KB here) are pooled; small ones malloc recycles itself."""
    pool = alloc.BufferPool()
    mid = pool.empty_strided((128, 1024), (1024, 1), dtype=torch.float32, device="cpu")
    small = pool.empty_strided((16, 1024), (1024, 1), dtype=torch.float32, device="cpu")
    assert list(pool.storages) == [(128 * 1024 * 4, torch.float32)] and small.numel() == 16 * 1024
    ptr = mid.data_ptr()
    busy = pool.empty_strided((128, 1024), (1024, 1), dtype=torch.float32, device="cpu")  # mid is still held
    assert busy.data_ptr() != ptr
    del mid
    again = pool.empty_strided((1024, 128), (128, 1), dtype=torch.float32, device="cpu")  # same bytes, new shape
    assert again.data_ptr() == ptr and again.shape == (1024, 128)
