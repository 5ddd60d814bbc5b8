"""Forward and backward as one ATen graph (the joint graph), traced through the dispatcher.

The torch-level graph runs on fake primals that require grad, under grad mode, with the recorder
of aten_trace.py on; then `torch.autograd.grad(differentiable outputs, primals needing grad,
tangents, allow_unused=True)` runs under the same modes, so what gets recorded for the backward is
autograd's own derivative formulas (and the backward of any user autograd.Function or checkpointed
region), the ops eager would run for `.backward()`.

    placeholders  primals: the graph inputs, then real tensors requiring grad met in the trace
                  (parameters reached as constants), lifted so they get gradients; then one
                  tangent per differentiable forward output
    output        (*forward outputs, flat, *gradients of the primals in `grad_of`)

A primal autograd gives no gradient for (unused, or reached only through no_grad code) has None
there. A forward output with no tangent (an integer, a detached tensor, one with no path to a
primal) is non-differentiable: the runtime marks it so.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import (DataDependentOutputException, DynamicOutputShapeException, FakeTensor,
                                           FakeTensorMode)
from torch.utils._pytree import tree_flatten, tree_map

from .lifted_scalars import LiftedScalars
from .aten_trace import AtenTracer, TorchLevelRunner, _first_line, _first_non_placeholder, _Recorder, fake_inputs, \
    output_infos, run_on_fakes, symbolic_fakes, one_element_inputs, with_lifted_scalars, lifting_failures, VALUE_GUARDS_KEY
from .builder import META_KEY
from .errors import DataDependentOp, FakeRunError, UnsupportedGraph
from .graph_io import FUNCTIONAL_KEY, MUTATIONS_KEY, OUTPUTS_KEY, OutputInfo
from .meta import TensorMeta
from .partition import Partition, partition


@dataclass(frozen=True)
class JointGraph:
    gm: fx.GraphModule              # the ATen joint graph (in-place ops as traced)
    num_primals: int                # graph inputs + lifted tensors
    lifted: tuple                   # real tensors requiring grad, lifted to primals after the graph inputs
    num_forward: int                # flat forward outputs
    tangent_of: tuple[int, ...]     # forward output positions with a tangent, in placeholder order
    grad_of: tuple[int, ...]        # primal positions whose gradients the joint returns, in order

    @property
    def grad_outputs(self) -> list[int]:
        """Joint output positions that are gradients (prims.partition's `grad_outputs`)."""
        return list(range(self.num_forward, self.num_forward + len(self.grad_of)))


def needs_joint(gm: fx.GraphModule, example_inputs) -> bool:
    """Whether a compile under the current grad mode must build a backward: some input, or some
    tensor constant of the graph, requires grad."""
    if not torch.is_grad_enabled():
        return False
    if any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs):
        return True
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in _attr_tensors(gm))


def _attr_tensors(gm):
    for n in gm.graph.nodes:
        if n.op == "get_attr":
            obj = gm
            for part in n.target.split("."):
                obj = getattr(obj, part, None)
            yield obj


class _JointTracer(AtenTracer):
    """An AtenTracer whose real tensors requiring grad become primals, not constants."""

    def __init__(self, fake_mode):
        super().__init__(fake_mode)
        self.lifted: list[torch.Tensor] = []
        self.lifted_fakes: list[torch.Tensor] = []

    def lift_constant(self, x):
        """Reached from the recorder, past autograd: a real tensor requiring grad here would get
        no gradient, so the graph is refused instead."""
        if isinstance(x, torch.Tensor) and not isinstance(x, FakeTensor) and x.requires_grad and \
                id(x) not in self._consts:
            raise UnsupportedGraph("a tensor that requires grad entered the graph past autograd "
                                   "(not as an input or attribute of the graph); its gradient would be lost")
        return super().lift_constant(x)

    def lift_primal(self, x):
        """A real tensor met by the torch-level graph (attribute, baked-in argument): a constant, or a
        new primal when it requires grad, placed after the other primals."""
        if not isinstance(x, torch.Tensor) or isinstance(x, FakeTensor) or not x.requires_grad:
            return self.lift_constant(x)
        fake = self._consts.get(id(x))
        if fake is None:
            fake = self.fake_mode.from_tensor(x, static_shapes=True)
            if not fake.requires_grad:
                fake.requires_grad_(True)
            self._consts[id(x)] = fake
            self.lifted.append(x)
            self.lifted_fakes.append(fake)
            first_op = _first_non_placeholder(self.graph)  # after every primal (at the end while there are no ops)
            with self.graph.inserting_before(first_op) if first_op is not None else self.graph.inserting_after(None):
                node = self.graph.placeholder(f"lifted_{len(self.lifted) - 1}")
            self.bind(fake, node)
        return fake


class _JointRunner(TorchLevelRunner):
    """Lifts real tensors reached as attributes or baked into node arguments before autograd sees
    them, so a parameter so reached gets its gradient."""

    def get_attr(self, target, args, kwargs):
        return self.tracer.lift_primal(fx.Interpreter.get_attr(self, target, args, kwargs))

    def fetch_args_kwargs_from_env(self, n):
        args, kwargs = super().fetch_args_kwargs_from_env(n)
        return tree_map(self.tracer.lift_primal, (args, kwargs))

    def run_node(self, n):
        """Each autograd node the torch-level node made is tagged with its name, so a backward that
        cannot be traced names the node to split the graph at."""
        result = super().run_node(n)
        for t in tree_flatten(result)[0]:
            if isinstance(t, torch.Tensor) and t.grad_fn is not None:
                _tag_autograd_nodes(t.grad_fn, n.name)
        return result

    def call_module(self, target, args, kwargs):
        """A submodule runs on its tensors lifted (fakes), not on the real ones."""
        module = self.fetch_attr(target)
        tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
        lifted = {name: self.tracer.lift_primal(t) for name, t in tensors.items()}
        return torch.func.functional_call(module, lifted, tuple(args), dict(kwargs))


def trace_joint(gm: fx.GraphModule, example_inputs) -> JointGraph:
    """The joint ATen graph of `gm` for inputs like `example_inputs`, grad mode on."""
    return with_lifted_scalars(lambda lift: _trace_joint(gm, example_inputs, lift))


def _trace_joint(gm: fx.GraphModule, example_inputs, lift: bool) -> JointGraph:
    symbolic = symbolic_fakes(gm, example_inputs)  # TorchDynamo's SymInts: its fakes and fake mode
    if symbolic is None:
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        fakes = fake_inputs(fake_mode, example_inputs)
    else:
        fake_mode, fakes = symbolic
    with fake_mode:  # the primals are leaves, requiring grad as the real inputs do; sizes stay as they are
        fakes = [f.detach().requires_grad_(x.requires_grad) if isinstance(f, torch.Tensor) else f
                 for f, x in zip(fakes, example_inputs)]
    tracer = _JointTracer(fake_mode)
    if symbolic is not None:
        tracer.input_values = one_element_inputs(fakes, example_inputs)
    tracer.scalars = LiftedScalars.of(fakes) if lift else None
    try:
        with torch.enable_grad():
            result = run_on_fakes(_JointRunner(gm, tracer, fakes), fakes)
    except FakeRunError as e:
        # The primals are leaves; an input that is not one may be written in place where a leaf may not.
        if "leaf Variable that requires grad" in str(e) and any(
                isinstance(x, torch.Tensor) and x.requires_grad and not x.is_leaf for x in example_inputs):
            raise UnsupportedGraph("a graph input that requires grad is written in place") from e
        raise
    flat, spec = tree_flatten(result)
    fakes = [f for f in fakes if isinstance(f, torch.Tensor)]  # size inputs have no placeholder
    primals = fakes + tracer.lifted_fakes
    tangent_of = tuple(i for i, o in enumerate(flat) if _differentiable(o))
    grad_of = tuple(i for i, p in enumerate(primals) if p.requires_grad)
    with lifting_failures(tracer.scalars):
        grads = _trace_backward(tracer, [flat[i] for i in tangent_of], [primals[i] for i in grad_of])
    infos = output_infos(flat, fakes)
    infos += [OutputInfo(None, None) if g is None else OutputInfo(TensorMeta.of(g), None) for g in grads]
    tracer.graph.output(tuple(tracer.node_of(o) for o in [*flat, *grads]))
    joint = fx.GraphModule(tracer.root, tracer.graph)
    joint.meta[OUTPUTS_KEY] = infos
    joint.meta["out_spec"] = spec
    joint.meta[VALUE_GUARDS_KEY] = tuple(tracer.value_guards)
    return JointGraph(joint, len(primals), tuple(tracer.lifted), len(flat), tangent_of, grad_of)


NODE_TAG = "kiln_node"  # grad_fn.metadata key: the torch-level node whose forward made it


def _tag_autograd_nodes(grad_fn, name: str) -> None:
    """Tag grad_fn and the untagged autograd nodes behind it (made by the same torch-level node:
    the nodes of earlier ones are tagged already, so each node is visited once)."""
    stack = [grad_fn]
    while stack:
        node = stack.pop()
        if node is None or NODE_TAG in node.metadata:
            continue
        node.metadata[NODE_TAG] = name
        stack.extend(next_fn for next_fn, _ in node.next_functions)


class _BackwardRecorder(_Recorder):
    """The recorder of the backward: an op whose output depends on values names the torch-level
    node whose backward it belongs to."""

    failed_node: str | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        try:
            return super().__torch_dispatch__(func, types, args, kwargs)
        except (DataDependentOutputException, DynamicOutputShapeException):
            node = torch._C._current_autograd_node()
            self.failed_node = None if node is None else node.metadata.get(NODE_TAG)
            raise


def _differentiable(out) -> bool:
    return isinstance(out, torch.Tensor) and out.requires_grad and (out.is_floating_point() or out.is_complex())


def _trace_backward(tracer: _JointTracer, outputs, primals) -> list:
    """Tangent placeholders, then autograd.grad recorded; None for a primal with no gradient."""
    if not outputs or not primals:
        return [None] * len(primals)
    fake_mode = tracer.fake_mode
    tangents = []
    with fake_mode:  # made outside the recorder: placeholders, not ops of the graph
        for o in outputs:
            tangents.append(torch.empty(o.shape, dtype=o.dtype, device=o.device))
    for j, t in enumerate(tangents):
        tracer.bind(t, tracer.graph.placeholder(f"tangents_{j}"))
    recorder = _BackwardRecorder(tracer)
    with fake_mode, recorder:
        try:
            grads = torch.autograd.grad(outputs, primals, tangents, allow_unused=True)
        except (RuntimeError, TypeError, ValueError) as e:
            if recorder.failed_node is not None:  # split there: that op runs eagerly, with its eager backward
                raise DataDependentOp(f"the backward of an op depends on tensor values ({type(e).__name__}: "
                                      f"{_first_line(e)})", recorder.failed_node) from e
            raise UnsupportedGraph(f"tracing the backward failed: {type(e).__name__}: {e}") from e
    return [None if g is None else g for g in grads]


@dataclass(frozen=True)
class TrainingGraphs:
    """The joint prims graph split for the runtime, each graph with its output meta (graph_io.py).

    forward:  placeholders = primals; user outputs = (*forward outputs, *saved); then the new values
              of mutated inputs (copied back as in any graph) and bases of aliased outputs
    backward: placeholders = (*saved, *tangents); outputs = the gradients of `grad_of` (None where
              autograd gives none)
    """
    forward: fx.GraphModule
    backward: fx.GraphModule
    partition: Partition
    num_forward: int
    num_saved: int
    input_aliases: tuple[int, ...] = ()  # forward outputs that are (views of) inputs: made by the caller


def split_joint(prims_joint: fx.GraphModule, joint: JointGraph) -> TrainingGraphs:
    """Partition the functional, decomposed joint graph and give each half its output meta."""
    n_fwd, n_grad = joint.num_forward, len(joint.grad_of)
    _drop_gradient_bases(prims_joint, n_fwd, n_grad)
    infos = list(prims_joint.meta[OUTPUTS_KEY])
    mutations = tuple(prims_joint.meta.get(MUTATIONS_KEY, ()))
    grads = range(n_fwd, n_fwd + n_grad)
    aliases = _input_aliases(infos[:n_fwd], mutations)
    for m in mutations:
        if m.output_index in grads or (m.storage is not None and m.storage.index in grads):
            raise UnsupportedGraph("an input mutation depends on the backward")
        if m.input_index < joint.num_primals and m.input_index in joint.grad_of:
            raise UnsupportedGraph("a graph input that requires grad is written in place")
    part = partition(prims_joint, num_primals=joint.num_primals, grad_outputs=joint.grad_outputs)
    forward = _forward_with_meta(part.forward, infos, mutations, n_fwd, n_grad, len(part.saved))
    backward = _backward_with_meta(part.backward, infos[n_fwd:n_fwd + n_grad])
    return TrainingGraphs(forward, backward, part, n_fwd, len(part.saved), aliases)


def _drop_gradient_bases(gm, n_fwd: int, n_grad: int) -> None:
    """Gradients that view one buffer (`diff`'s input gradients are slices of one tensor) come out
    of functionalize as views of an extra "base" output, which reads the tangents: no forward output.
    Each gradient is returned as a computed tensor anyway (`_backward_with_meta`), so such bases
    leave the graph's outputs, and every later output position moves up."""
    infos = list(gm.meta[OUTPUTS_KEY])
    mutations = tuple(gm.meta.get(MUTATIONS_KEY, ()))
    grads = range(n_fwd, n_fwd + n_grad)

    def base(info):
        view = info.view_of
        return view.index if view is not None and view.base == "output" else None

    kept_by_forward = {base(info) for pos, info in enumerate(infos) if pos not in grads}
    kept_by_forward |= {m.output_index for m in mutations}
    kept_by_forward |= {m.storage.index for m in mutations if m.storage is not None and m.storage.base == "output"}
    drop = {base(infos[g]) for g in grads} - kept_by_forward - {None} - set(range(n_fwd + n_grad))
    if not drop:
        return
    keep = [pos for pos in range(len(infos)) if pos not in drop]
    moved = {old: new for new, old in enumerate(keep)}

    def remap_view(view):
        if view is None or view.base != "output":
            return view
        return None if view.index in drop else replace(view, index=moved[view.index])

    out = _output_node(gm)
    out.args = (tuple(out.args[0][pos] for pos in keep),)
    gm.meta[OUTPUTS_KEY] = [infos[pos].replace(view_of=remap_view(infos[pos].view_of),
                                               same_as=moved.get(infos[pos].same_as)) for pos in keep]
    gm.meta[MUTATIONS_KEY] = tuple(replace(m, output_index=moved.get(m.output_index), storage=remap_view(m.storage))
                                   for m in mutations)
    gm.recompile()


def _input_aliases(infos, mutations) -> tuple[int, ...]:
    """Forward outputs that are a graph input, or view one (or are the same tensor as such an output):
    the runtime makes them outside the autograd.Function, from the inputs, so they keep eager's
    identity and autograd's view tracking."""
    restrided = {m.input_index for m in mutations if m.layout is not None or m.storage is not None}
    aliases: dict[int, None] = {}  # ordered set
    for pos, info in enumerate(infos):
        view = info.view_of
        if info.same_as in aliases or info.input_index is not None or (view is not None and view.base == "input"):
            index = info.input_index if info.input_index is not None else (view.index if view else None)
            if index in restrided or (view is not None and view.dtype is not None):
                raise UnsupportedGraph("an output of a training graph views an input whose layout the graph "
                                       "changes, or views it as another dtype")
            aliases[pos] = None
    return tuple(aliases)


def _forward_with_meta(gm, infos, mutations, n_fwd, n_grad, n_saved) -> fx.GraphModule:
    """Outputs reordered to (*forward outputs, *saved, *mutation values and bases), meta to match."""
    out = _output_node(gm)
    values = list(out.args[0])
    n_extra = len(values) - n_fwd - n_saved
    user, extra, saved = values[:n_fwd], values[n_fwd:n_fwd + n_extra], values[n_fwd + n_extra:]

    def moved(j):  # a joint output position -> its forward output position
        if j is None or j < n_fwd:
            return j
        if j < n_fwd + n_grad:
            raise UnsupportedGraph("a forward output depends on a gradient")
        return j - n_grad + n_saved

    def remap(info):
        view = info.view_of
        if view is not None and view.base == "output":
            view = replace(view, index=moved(view.index))
        return info.replace(same_as=moved(info.same_as), view_of=view)

    placeholders = {n: i for i, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")}
    first = {}  # node -> the first output position holding it in the node's own layout
    for pos, v in enumerate(user):
        if isinstance(v, fx.Node) and infos[pos].view_of is None and infos[pos].meta == v.meta.get(META_KEY):
            first.setdefault(v, pos)
    saved_infos = []
    for k, s in enumerate(saved):
        meta = s.meta.get(META_KEY)
        if not isinstance(meta, TensorMeta):
            raise UnsupportedGraph(f"saved value {s.name} is not a tensor")
        # in the node's layout, which the backward is compiled for (a user output has eager's)
        saved_infos.append(OutputInfo(meta, placeholders.get(s), first.get(s)))
        first.setdefault(s, n_fwd + k)
    new_infos = [remap(i) for i in infos[:n_fwd]] + saved_infos + [remap(i) for i in infos[n_fwd + n_grad:]]
    out.args = (tuple([*user, *saved, *extra]),)
    gm.recompile()
    gm.meta[OUTPUTS_KEY] = new_infos
    gm.meta[MUTATIONS_KEY] = tuple(
        replace(m, output_index=moved(m.output_index),
                storage=None if m.storage is None else replace(m.storage, index=moved(m.storage.index)))
        for m in mutations)
    gm.meta[FUNCTIONAL_KEY] = True
    return gm


def _backward_with_meta(gm, grad_infos) -> fx.GraphModule:
    """Every gradient a computed tensor in eager's layout (or an input passed through, or None)."""
    placeholders = {n: i for i, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")}
    infos = []
    for value, info in zip(_output_node(gm).args[0], grad_infos):
        if not isinstance(value, fx.Node):
            infos.append(OutputInfo(None, None))
        else:
            meta = info.meta if isinstance(info.meta, TensorMeta) else value.meta[META_KEY]
            infos.append(OutputInfo(meta, placeholders.get(value)))
    gm.meta[OUTPUTS_KEY] = infos
    gm.meta[MUTATIONS_KEY] = ()
    gm.meta[FUNCTIONAL_KEY] = True
    return gm


def _output_node(gm) -> fx.Node:
    return next(n for n in reversed(gm.graph.nodes) if n.op == "output")
