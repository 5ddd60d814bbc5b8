"""A graph that writes an input is compiled for the memory sharing among its inputs that it first
saw. Called with inputs that share memory otherwise (separate copies, one tensor passed twice, a
view at another offset), it is compiled again for them and kept (kiln/fallback.py guarded_call):
never a whole-graph eager run (KILN_STRICT=1). Kiln's own capture guards memory sharing itself
(a recompile of the function); TorchDynamo does not, so this is what handles torch.compile."""
import pytest
import torch
import torch.fx as fx

import kiln
from kiln import fallback
from kiln.backend import compile_fx
from kiln_effects import check_effects, clone_inputs
from kiln_entries import ENTRY_POINTS


pytestmark = pytest.mark.usefixtures("strict")


ENTRIES = ENTRY_POINTS


def writes_a_reads_b(a, b):
    a.mul_(3)
    return b + 1


def _view_of(offset, n=4):
    base = torch.tensor([1.0, -0.0, float("inf"), 2.5, -7.0, 3.0, float("nan"), 0.5])
    return [base[:n], base[offset:offset + n]]


LAYOUTS = {
    "apart": lambda: [torch.tensor([1.0, 2.0, -3.0, 0.0]), torch.tensor([4.0, 5.0, 6.0, -0.0])],
    "same tensor": lambda: (lambda t: [t, t])(torch.tensor([1.0, 2.0, -3.0, float("inf")])),
    "view at 0": lambda: _view_of(0),
    "view at 2": lambda: _view_of(2),
    "zero-size apart": lambda: [torch.empty(0), torch.empty(0)],
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("first", ["apart", "view at 2"])
def test_other_memory_sharing_compiles_again(entry, first):
    compiled = ENTRIES[entry](writes_a_reads_b)
    for name in [first, *LAYOUTS, first]:
        make = LAYOUTS[name]
        got = make()
        check_effects(lambda *args: compiled(*args), writes_a_reads_b, lambda got=got: clone_inputs(got))


def test_variants_are_kept_and_bounded(monkeypatch):
    gm = fx.symbolic_trace(writes_a_reads_b)
    compiles = []
    real = kiln.backend.compile_graph

    def counting(*args, **kwargs):
        compiles.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kiln.backend, "compile_graph", counting)
    call = compile_fx(gm, LAYOUTS["apart"]())
    for _ in range(3):
        for name in ("apart", "same tensor", "view at 2"):
            check_effects(call, writes_a_reads_b, lambda name=name: clone_inputs(LAYOUTS[name]()))
    assert len(compiles) == 3  # the first compile, then one per new memory sharing, reused after
    monkeypatch.setattr(fallback, "MAX_ALIASING_VARIANTS", 0)
    call = compile_fx(gm, LAYOUTS["apart"]())
    with pytest.raises(RuntimeError, match="no longer shares memory|share memory"):  # strict: no silent eager run
        call(*LAYOUTS["same tensor"]())
