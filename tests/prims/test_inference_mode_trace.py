"""Under torch.inference_mode the dispatcher skips the Autograd keys, where CompositeImplicit ops
(adaptive_avg_pool2d, linear, flatten, ...) decompose, so the ATen trace used to keep them whole and
they became kiln.fallback nodes (16 in the e2e ResNet through capture.compile). The ATen tracer now
decomposes an op with a CompositeImplicitAutograd kernel when one reaches it: the same ATen graph as
under no_grad, for inference tensors and for ordinary ones."""
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from kiln import prims
from kiln.prims import PRIMS


def model(x, w):
    return F.adaptive_avg_pool2d(F.linear(x, w).relu(), 1).flatten(1)


def _targets(gm):
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


@pytest.mark.parametrize("inference_tensors", [True, False])
def test_inference_mode_traces_like_no_grad(inference_tensors):
    x, w = torch.randn(2, 3, 4, 5), torch.randn(6, 5)
    with torch.no_grad():
        expected = _targets(prims.trace_aten(fx.symbolic_trace(model), [x, w]))
    with torch.inference_mode():
        xi, wi = (x.clone(), w.clone()) if inference_tensors else (x, w)
        assert xi.is_inference() == inference_tensors
        traced = prims.trace_aten(fx.symbolic_trace(model), [xi, wi])
        assert torch.is_inference_mode_enabled()
        pg = prims.lower(fx.symbolic_trace(model), [xi, wi])
        (got,) = prims.call_with_effects(pg, [xi, wi])
        torch.testing.assert_close(got, model(xi, wi))
    assert _targets(traced) == expected
    assert "aten.adaptive_avg_pool2d.default" not in expected
    assert not [n for n in pg.graph.nodes if n.target is PRIMS["fallback"]]
