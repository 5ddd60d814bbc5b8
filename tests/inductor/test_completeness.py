"""Every loop op renders in C++ and in Triton; every prim lowers (or is extern/fallback by design)."""
import pytest

from kiln.codegen.cpp.ops import EXPR as CPP_EXPR, REDUCTION as CPP_REDUCTION
from kiln.codegen.triton.ops import EXPR as TRITON_EXPR, REDUCTION as TRITON_REDUCTION
from kiln.inductor.ir.loop import LoopOp, ReductionType
from kiln.inductor.lowering import LOWERINGS
from kiln.prims import PRIMS, Category

LEAVES = {LoopOp.LOAD, LoopOp.CONSTANT, LoopOp.INDEX_EXPR, LoopOp.LOCAL,
          LoopOp.INDIRECT_LOAD}  # rendered by the scopes directly


@pytest.mark.parametrize("op", [o for o in LoopOp if o not in LEAVES], ids=lambda o: o.value)
def test_loop_op_has_both_renderings(op):
    assert op in CPP_EXPR and op in TRITON_EXPR


@pytest.mark.parametrize("kind", list(ReductionType), ids=lambda r: r.value)
def test_reduction_has_both_renderings(kind):
    assert kind in CPP_REDUCTION and kind in TRITON_REDUCTION


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_every_prim_has_a_lowering(name):
    prim = PRIMS[name]
    assert prim in LOWERINGS or prim.category is Category.RANDOM, f"{prim} has no lowering"


def test_loop_ir_is_about_fifty_ops_at_most():
    assert len(LoopOp) <= 60
