"""Joint (forward + backward) prims graphs for the partitioner's tests, traced as the training
contract says (issue 13): Kiln's dispatcher tracer over fake primals with requires_grad, then
torch.autograd.grad under the same modes, functionalized and decomposed to prims."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import FakeTensorMode

from kiln import prims
from kiln.prims import aten_trace as at
from kiln.prims.graph_io import OUTPUTS_KEY, OutputInfo
from kiln.prims.meta import TensorMeta


@dataclass
class Joint:
    gm: fx.GraphModule  # prims graph: (*primals, *tangents) -> (*forward outputs, *gradients)
    num_primals: int
    num_outputs: int  # forward outputs
    grad_outputs: list[int]
    wants_grad: list[bool]  # per primal


def trace_joint(fn, primals) -> Joint:
    """`fn(*primals) -> tuple of tensors`; every floating primal with requires_grad gets a gradient."""
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    tracer = at.AtenTracer(fake_mode)
    fakes = [fake_mode.from_tensor(p, static_shapes=True) for p in primals]
    with fake_mode:
        fakes = [f.detach().requires_grad_(p.requires_grad) for f, p in zip(fakes, primals)]
    for i, f in enumerate(fakes):
        tracer.bind(f, tracer.graph.placeholder(f"primals_{i}"))
    with fake_mode, at._Recorder(tracer), torch.enable_grad():
        outs = list(fn(*fakes))
    with fake_mode:
        tangents = [torch.empty_like(o) for o in outs]
    for j, t in enumerate(tangents):
        tracer.bind(t, tracer.graph.placeholder(f"tangents_{j}"))
    wants = [f for f in fakes if f.requires_grad]
    with fake_mode, at._Recorder(tracer):
        grads = torch.autograd.grad(outs, wants, tangents, allow_unused=True)
    if any(g is None for g in grads):
        raise ValueError("every primal that requires grad must get a gradient in these tests")
    flat = [*outs, *grads]
    inputs = {id(t): i for i, t in enumerate([*fakes, *tangents])}
    first: dict[int, int] = {}
    infos = []
    for pos, o in enumerate(flat):
        infos.append(OutputInfo(TensorMeta.of(o), inputs.get(id(o)), first.get(id(o))))
        first.setdefault(id(o), pos)
    tracer.graph.output(tuple(tracer.node_of(o) for o in flat))
    aten_gm = fx.GraphModule(tracer.root, tracer.graph)
    aten_gm.meta[OUTPUTS_KEY] = infos
    gm = prims.decompose(prims.functionalize(aten_gm))
    n = len(outs)
    return Joint(gm, len(primals), n, list(range(n, n + len(grads))), [p.requires_grad for p in primals])


def run_partition(part, primals, tangents):
    """Forward then backward through the prims' reference implementations: (outputs, gradients)."""
    fwd = part.forward(*primals)
    n_saved = len(part.saved)
    outs, saved = fwd[:len(fwd) - n_saved], fwd[len(fwd) - n_saved:]
    grads = part.backward(*saved, *tangents)
    return list(outs), list(grads)


def eager_reference(fn, primals, tangents):
    """Eager's outputs and gradients (torch.autograd.grad) for the same tangents."""
    leaves = [p.detach().clone().requires_grad_(p.requires_grad) for p in primals]
    outs = list(fn(*leaves))
    wants = [x for x in leaves if x.requires_grad]
    grads = torch.autograd.grad(outs, wants, tangents)
    return [o.detach() for o in outs], list(grads)
