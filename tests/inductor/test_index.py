"""Index expressions simplify the reshape/view algebra without sympy."""
from kiln.inductor.ir.index import Affine, FloorDiv, Mod, Sym, as_strides, bounds, substitute

i, j, k = Sym("i", 3), Sym("j", 64), Sym("k", 5)


def test_split_and_merge_dims():
    flat = i * 64 + j
    assert flat // 64 == i
    assert flat % 64 == j
    assert (flat * 2 + 1) // 2 == flat  # (2*flat + 1) // 2, with 1 < 2


def test_not_simplifiable_stays_symbolic():
    e = (i * 4 + j) // 64
    assert isinstance(e, FloorDiv)
    assert isinstance((i * 4 + j) % 64, Mod)
    assert bounds(e) == (0, (2 * 4 + 63) // 64)


def test_nested_floordiv_folds():
    e = ((i * 64 + j) // 8) // 8
    assert e == i


def test_size_one_vars_vanish():
    one = Sym("u", 1)
    assert one * 7 + i == i


def test_substitute_renames_and_resimplifies():
    x0 = Sym("x0", 3)
    assert substitute(i * 64 + j, {i: x0}) == x0 * 64 + j
    assert substitute((i * 64 + j) // 64, {j: 5}) == i


def test_as_strides():
    assert as_strides(i * 64 + j * 2 + 3, (i, j)) == ((64, 2), 3)
    assert as_strides(i * 64 + j, (i,)) is None
    assert as_strides((i * 4 + j) // 64, (i, j)) is None


def test_repr_is_readable():
    assert repr((i * 4 + j) // 64) == "((4*i + j) // 64)"
    assert repr(Affine((), 0)) == "0"


def test_reshape_split_and_merge_recombine_to_affine():
    # [1024, 512] viewed as [4, 256, 512] and read back: the FloorDiv/Mod pair folds to one term,
    # so a matmul on a reshaped input gets a strided view instead of a copy.
    i0, i1 = Sym("i0", 1024), Sym("i1", 512)
    flat = i0 * 512 + i1
    parts = [((flat // st) % n) for st, n in zip((131072, 512, 1), (4, 256, 512))]
    assert parts == [i0 // 256, i0 % 256, i1]
    assert parts[0] * 131072 + parts[1] * 512 + parts[2] == i0 * 512 + i1


def test_common_factor_division():
    assert (i * 64 + j) // 128 == i // 2 and isinstance(i // 2, FloorDiv)  # j < 64 cannot carry into i's multiple of 64
    assert (i * 64 + j) % 128 == (i % 2) * 64 + j


def test_merged_loop_recombines_nested_split():
    # rows of [32, 256, 256] fitted onto [4, 8, 256] and then merged into one loop of 8192
    m, r = Sym("m", 8192), Sym("r", 256)
    e = (m // 2048) * 524288 + ((m // 256) % 8) * 65536 + (m % 256) * 256 + r
    assert e == m * 256 + r
