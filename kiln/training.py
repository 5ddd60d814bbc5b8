"""Training graphs: a forward and a backward compiled from one joint graph, run as an autograd.Function.

    joint = prims.trace_joint(gm, inputs)        forward + autograd's backward, one ATen graph
    functionalize, decompose                      as any graph (backend.to_prims)
    prims.split_joint -> prims.partition          forward graph (outputs + saved), backward graph
    backend.build_kernels, twice                  each half lowered, scheduled, generated

The compiled callable calls `TrainingFunction.apply(runtime, sizes, *inputs, *lifted)` (`sizes`: the
size inputs of a graph of symbolic sizes, passed on to both halves; empty for a static graph):
- forward runs the compiled forward (input copy-backs, such as BatchNorm's running stats, happen
  there, once, as in eager), saves its saved values with `ctx.save_for_backward` (so an in-place
  change to one before the backward raises autograd's own error), and marks outputs autograd cannot
  differentiate (integers, detached values, no path to a primal) non-differentiable.
- backward runs the compiled backward on the saved values and the incoming gradients (given the
  layout the backward was compiled for; a missing one is zeros, autograd's materialized grad). It
  may run several times (`retain_graph=True`): the saved values are only read.
- With `create_graph=True` (grad mode on inside backward) the compiled backward is not
  differentiable, so the graph's original torch-level code runs again eagerly on the same inputs
  (weak references: still alive, unchanged) and autograd differentiates that, building a graph for
  higher-order gradients. A graph with random ops or input mutations cannot be run again to the same
  values: there, create_graph raises.

Random ops: the forward draws one seed per call from torch's default generator, as any Kiln graph
does (docs/prims.md); the backward reads the values the forward drew (dropout masks are saved, never
recomputed: the partition never recomputes a random prim), so forward and backward agree.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_unflatten

from kiln import inductor, prims
from kiln.codegen.index_check import no_eager_graph

from .build import build_kernels, to_prims, with_io
from .dump import GraphDump
from .fallback import EagerGraph
from .logs import stage
from .training_stats import eager_saved_bytes_on_fakes
from kiln.prims.symbolic import evaluate

META_KEY = prims.META_KEY


@dataclass(frozen=True)
class CompiledTraining:
    """What one training compile produced; `call(*inputs)` runs it (outputs with autograd history)."""
    call: object
    target: str
    joint: prims.JointGraph
    prims_gm: fx.GraphModule      # the joint graph in prims, before the partition
    graphs: prims.TrainingGraphs
    forward: object               # backend.Kernels
    backward: object              # backend.Kernels
    dump_dir: object
    compile_s: float

    @property
    def kernels(self) -> list:
        return self.forward.schedule.kernels + self.backward.schedule.kernels

    @property
    def backward_kernels(self) -> int:
        return len(self.backward.schedule.kernels)

    @property
    def mutated_inputs(self) -> list[int]:
        return sorted({m.input_index for m in self.graphs.forward.meta[prims.MUTATIONS_KEY]})

    def __repr__(self):
        return (f"CompiledTraining(target={self.target}, forward kernels={len(self.forward.schedule.kernels)}, "
                f"backward kernels={len(self.backward.schedule.kernels)}, compile_s={self.compile_s:.3f})")


def compile_training(gm: fx.GraphModule, example_inputs, *, target: str, eager: EagerGraph,
                     sizes=None) -> CompiledTraining:
    """`sizes`: a graph of symbolic sizes (kiln/dynamic.py SizeInputs): where its size inputs are, and how each
    symbol is read from the inputs; both halves then take the symbols as trailing arguments."""
    start = time.perf_counter()
    dump = GraphDump()
    dump.write("0_captured_graph.py", lambda: gm.print_readable(print_output=False))
    with stage("trace_joint"):
        joint = prims.trace_joint(gm, example_inputs)
    dump.write("1_joint_graph.py", lambda: joint.gm.print_readable(print_output=False))
    with stage("functionalize"):
        aten_joint = prims.functionalize(joint.gm)
    dump.write("1_joint_functional.py", lambda: with_io(aten_joint))
    prims_joint = to_prims(aten_joint, target, dump)
    with stage("partition"):
        graphs = prims.split_joint(prims_joint, joint)
    dump.write("2_partition.txt", lambda: _partition_text(graphs.partition, gm, example_inputs))
    dump.write("2_forward_graph.py", lambda: with_io(graphs.forward))
    dump.write("2_backward_graph.py", lambda: with_io(graphs.backward))
    peak = inductor.eager_peak_bytes(joint.gm)
    names = sizes.names if sizes else ()
    tensors = sizes.tensor_examples if sizes else example_inputs
    inputs = [*tensors, *joint.lifted]
    forward = build_kernels(graphs.forward, inputs, target, dump, peak, on_index_error=no_eager_graph,
                            prefix="forward_", size_inputs=names)
    backward_inputs = [n.meta[META_KEY] if sizes else _example(n) for n in _placeholders(graphs.backward)]
    backward = build_kernels(graphs.backward, backward_inputs, target, dump, peak, on_index_error=no_eager_graph,
                             prefix="backward_", size_inputs=names)
    runtime = _Runtime(forward.call, backward.call, joint, graphs, eager, len(tensors),
                       rerunnable=not _has_random(prims_joint) and not graphs.forward.meta[prims.MUTATIONS_KEY])
    spec = joint.gm.meta["out_spec"]

    if sizes is None:
        def call(*args):
            primals = (*args, *joint.lifted)
            return tree_unflatten(runtime.with_aliases(TrainingFunction.apply(runtime, (), *primals), primals), spec)
    else:
        runtime.sizes = sizes

        def call(*args):
            values = tuple(args[i] for i in sizes.positions)
            primals = (*[args[i] for i in sizes.tensor_positions], *joint.lifted)
            return tree_unflatten(runtime.with_aliases(TrainingFunction.apply(runtime, values, *primals), primals),
                                  spec)

    return CompiledTraining(call, target, joint, prims_joint, graphs, forward, backward, dump.dir,
                            time.perf_counter() - start)


def _partition_text(part, gm, example_inputs) -> str:
    """The partition for `kiln dump`: saved values with sizes, recomputed nodes, bytes against
    save_all and against eager's saved tensors (measured on fakes: nothing runs, nothing is written)."""
    try:
        eager = eager_saved_bytes_on_fakes(gm, example_inputs)
    except Exception as e:  # noqa: BLE001  (a dump never breaks a compile)
        return part.text() + f"# eager's saved tensors: not measured ({type(e).__name__}: {e})\n"
    return part.text(eager)


def _placeholders(gm):
    return [n for n in gm.graph.nodes if n.op == "placeholder"]


def _example(node) -> torch.Tensor:
    m = node.meta[META_KEY]
    return torch.empty_strided(m.shape, m.strides, dtype=m.dtype, device=m.device)


def _has_random(prims_gm) -> bool:
    return any(isinstance(n.target, prims.Prim) and n.target.category is prims.Category.RANDOM
               for n in prims_gm.graph.nodes)


class _Runtime:
    """The compiled halves and what the Function needs to know about their inputs and outputs."""

    def __init__(self, forward, backward, joint, graphs, eager, num_inputs, rerunnable):
        self.forward, self.backward, self.eager = forward, backward, eager
        self.num_forward, self.num_primals, self.num_inputs = graphs.num_forward, joint.num_primals, num_inputs
        self.tangent_of, self.grad_of = joint.tangent_of, joint.grad_of
        self.lifted = joint.lifted
        self.tangent_metas = [n.meta[META_KEY] for n in _placeholders(graphs.backward)[graphs.num_saved:]]
        self.rerunnable = rerunnable
        self.sizes = None  # SizeInputs of a graph of symbolic sizes (kiln/dynamic.py)
        infos = graphs.forward.meta[prims.OUTPUTS_KEY]
        self.aliases = {pos: infos[pos] for pos in graphs.input_aliases}
        self.returned = [pos for pos in range(self.num_forward) if pos not in self.aliases]  # by the Function

    def with_aliases(self, returned, primals) -> list:
        """All forward outputs: the Function's, and the inputs (or views of them) made here, with grad
        mode on, so autograd tracks them as eager does (an input itself, a view of it)."""
        if not self.aliases:
            return list(returned)
        out, it = [], iter(returned)
        for pos in range(self.num_forward):
            info = self.aliases.get(pos)
            if info is None:
                out.append(next(it))
            elif info.same_as is not None:
                out.append(out[info.same_as])
            elif info.input_index is not None:
                out.append(primals[info.input_index])
            else:
                v = info.view_of
                out.append(torch.as_strided(primals[v.index], v.shape, v.strides,
                                            primals[v.index].storage_offset() + v.offset))
        return out

    def tangents(self, grads, env) -> list:
        """The backward's tangents from the Function's incoming gradients: an output made outside the
        Function gets zeros here (autograd sends its gradient through the view it is instead).
        `env`: the symbols' values of this call, for metas of symbolic sizes."""
        by_pos = dict(zip(self.returned, grads))
        metas = self.tangent_metas if not env else [_concrete(m, env) for m in self.tangent_metas]
        return [_in_layout(by_pos[i], meta) if by_pos.get(i) is not None else _zeros(meta)
                for i, meta in zip(self.tangent_of, metas)]

    def eager_inputs(self, inputs, values) -> list:
        """The original graph's inputs (size inputs included) from the Function's."""
        if self.sizes is None:
            return list(inputs[:self.num_inputs])
        return self.sizes.full_inputs(inputs[:self.num_inputs], values)


class TrainingFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, runtime: _Runtime, sizes: tuple, *inputs):
        flat = runtime.forward(*inputs, *sizes)
        ctx.sizes = sizes
        ctx.env = runtime.sizes.values(inputs, sizes) if runtime.sizes is not None else None
        outs, saved = [flat[i] for i in runtime.returned], flat[runtime.num_forward:]
        ctx.runtime = runtime
        ctx.save_for_backward(*saved)
        if runtime.rerunnable:  # for create_graph=True: the inputs (not kept alive), and their versions
            ctx.inputs = [weakref.ref(x) for x in inputs]
            ctx.versions = [x._version for x in inputs]
        differentiable = set(runtime.tangent_of)
        ctx.mark_non_differentiable(*[o for i, o in zip(runtime.returned, outs) if i not in differentiable
                                      and isinstance(o, torch.Tensor)])
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        runtime: _Runtime = ctx.runtime
        saved = ctx.saved_tensors  # raises autograd's error when freed (a second backward without retain_graph)
        if torch.is_grad_enabled():
            return (None, None, *_rerun_backward(ctx, grads))
        tangents = runtime.tangents(grads, ctx.env)
        result = [None] * runtime.num_primals
        for pos, g in zip(runtime.grad_of, runtime.backward(*saved, *tangents, *ctx.sizes)):
            result[pos] = g
        return (None, None, *result)


def _in_layout(g: torch.Tensor, meta) -> torch.Tensor:
    """An incoming gradient in the layout the backward was compiled for (autograd hands over any:
    expanded from a sum, channels-last...)."""
    if tuple(g.shape) == meta.shape and all(a == b for a, b, n in zip(g.stride(), meta.strides, meta.shape) if n != 1):
        return g
    return torch.empty_strided(meta.shape, meta.strides, dtype=meta.dtype, device=meta.device).copy_(g)


def _concrete(meta, env):
    """A meta of symbolic sizes at this call's sizes."""
    return prims.TensorMeta(tuple(evaluate(s, env) for s in meta.shape), meta.dtype,
                            tuple(evaluate(s, env) for s in meta.strides), meta.device)


def _zeros(meta) -> torch.Tensor:
    return torch.empty_strided(meta.shape, meta.strides, dtype=meta.dtype, device=meta.device).zero_()


def _rerun_backward(ctx, grads) -> list:
    """create_graph=True: the original graph run again eagerly on the same inputs, differentiated by
    autograd with a graph of its own."""
    runtime: _Runtime = ctx.runtime
    if not runtime.rerunnable:
        raise RuntimeError("kiln: create_graph=True (double backward) through a compiled training graph that "
                           "draws random numbers or writes its inputs is not supported; run this function eagerly "
                           "for higher-order gradients")
    inputs = [ref() for ref in ctx.inputs]
    if any(x is None for x in inputs):
        raise RuntimeError("kiln: create_graph=True through a compiled training graph needs its inputs, and one "
                           "of them was freed since its forward ran (Kiln does not keep them alive)")
    if any(x._version != v for x, v in zip(inputs, ctx.versions)):
        raise RuntimeError("kiln: create_graph=True: an input of the compiled graph was modified in place "
                           "since its forward ran")
    primals = [*inputs]
    outs = tree_flatten(runtime.eager(*runtime.eager_inputs(inputs, ctx.sizes)))[0]
    by_pos = dict(zip(runtime.returned, grads))  # outputs made outside the Function: autograd's own path
    diff = [(outs[i], by_pos[i]) for i in runtime.tangent_of if i in by_pos and outs[i].requires_grad]
    wanted = [primals[i] for i in runtime.grad_of]
    got = torch.autograd.grad([o for o, _ in diff], wanted, [g for _, g in diff], create_graph=True,
                              allow_unused=True) if diff and wanted else [None] * len(wanted)
    result = [None] * runtime.num_primals
    for pos, g in zip(runtime.grad_of, got):
        result[pos] = g
    return result
