"""The compile-time name check of generated wrappers (codegen/wrapper_check.py)."""
import pytest

from kiln.codegen.wrapper_check import WrapperNameError, check_names

GOOD = """
def call(in_x):
    buf0 = empty_strided((5,), (1,), dtype=torch.float32, device='cpu')
    kernel0(in_x, buf0)
    buf1 = buf0; del buf0
    if kiln_index_error():
        return kiln_on_index_error(in_x)
    results = ext(buf1, [in_x, 2.0], key=(1,))
    buf2 = results[0]
    del results
    in_x.copy_(buf2)
    return (buf1, buf2, )
"""
NAMESPACE = {name: None for name in ("empty_strided", "torch", "kernel0", "kiln_index_error", "kiln_on_index_error",
                                     "ext")}


def test_a_straight_line_wrapper_passes():
    check_names(GOOD, NAMESPACE)


@pytest.mark.parametrize("bad, message", [
    ("    del buf0\n", "deletes 'buf0'"),  # freed, never allocated (the Triton logsumexp plan)
    ("    kernel0(buf7)\n", "reads 'buf7'"),  # read before it is made
    ("    buf0 = empty_strided((1,), (1,), dtype=torch.float32, device='cpu')\n    del buf0\n    kernel0(buf0)\n",
     "reads 'buf0'"),  # read after it is freed
    ("    kernel9(in_x)\n", "reads 'kernel9'"),  # a kernel the backend does not have
])
def test_unbound_names_fail_at_compile_time(bad, message):
    source = "def call(in_x):\n" + bad + "    return (in_x, )\n"
    with pytest.raises(WrapperNameError, match=message):
        check_names(source, NAMESPACE)
