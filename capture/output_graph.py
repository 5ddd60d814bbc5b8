"""Build the fx graph: placeholders for tensor inputs, recorded ops, and the output.

Only tensors flow through the graph. The Python value the function returns is
rebuilt around the graph's results by an `OutputPlan` (constants stay
constants, containers are rebuilt, an input returned unchanged is the input).
"""
from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch._subclasses.fake_tensor import (DataDependentOutputException, DynamicOutputShapeException,
                                           FakeTensorMode, UnsupportedFakeTensorException)

from .exc import TorchOpError, Unsupported
from .guards import Guard, GuardSet
from .side_effects import EffectsPlan, SideEffects
from .sources import Frame, Source, fetcher
from .variables import (BaseListVariable, ConstantVariable, TensorVariable, TupleVariable,
                        VariableTracker, wrap_constant)
from .variables.constant import is_constant_value

# Fake-tensor failures that mean "needs real data", not "the user made a mistake".
DATA_DEPENDENT_ERRORS = (DataDependentOutputException, DynamicOutputShapeException,
                         UnsupportedFakeTensorException)


# -- how to rebuild the function's return value from the graph outputs --------------------------

class OutputPlan:
    def build(self, graph_outputs, frame: Frame, memo: dict | None = None) -> Any:
        """The Python value. `memo` (one per call) makes a container rebuilt in two places one
        object, as in eager; plans holding other plans pass it down."""
        raise NotImplementedError


@dataclass(frozen=True)
class FromGraph(OutputPlan):
    index: int

    def build(self, graph_outputs, frame, memo=None):
        return graph_outputs[self.index]

    def __repr__(self) -> str:
        return f"graph_out[{self.index}]"


@dataclass(frozen=True)
class FromSource(OutputPlan):
    """A value the function read and returned unchanged: the very same object."""
    source: Source

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fetch", fetcher(self.source))

    def build(self, graph_outputs, frame, memo=None):
        return self._fetch(frame.L, frame.G, frame.B, frame.C)

    def __repr__(self) -> str:
        return self.source.expr()


@dataclass(frozen=True)
class Constant(OutputPlan):
    value: Any

    def build(self, graph_outputs, frame, memo=None):
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Rebuild(OutputPlan):
    container_type: type  # tuple, list, or a torch.return_types structseq
    items: tuple[OutputPlan, ...]

    def build(self, graph_outputs, frame, memo=None):
        if memo is None:
            return self.container_type([item.build(graph_outputs, frame) for item in self.items])
        built = memo.get(id(self))
        if built is None:
            built = memo[id(self)] = self.container_type([item.build(graph_outputs, frame, memo)
                                                          for item in self.items])
        return built

    def __repr__(self) -> str:
        items = ", ".join(map(repr, self.items))
        if self.container_type is list:
            return f"[{items}]"
        return f"({items}{',' if len(self.items) == 1 else ''})" if self.container_type is tuple else \
            f"{self.container_type.__name__}({items})"


# -- the graph under construction ------------------------------------------------------------

class OutputGraph:
    def __init__(self, code_name: str):
        self.code_name = code_name
        self.graph = torch.fx.Graph()
        self.fake_mode = FakeTensorMode()
        self.guards = GuardSet()
        self.variables_by_source: dict[Source, VariableTracker] = {}
        self.input_sources: list[Source] = []      # one per placeholder, in placeholder order
        self.example_inputs: list[torch.Tensor] = []
        self._tensor_reads: list[tuple[Source, torch.Tensor]] = []  # every tensor source read, for alias guards
        self._placeholder_by_id: dict[int, TensorVariable] = {}
        self._initial_versions: dict[int, int] = {}
        self._last_placeholder: torch.fx.Node | None = None
        self.instruction_count = 0  # across the frame and every inlined callee (capped)
        self.location = ""  # "file:line" of the instruction being traced, for node metadata
        self.side_effects = SideEffects()
        self.effects_plan: EffectsPlan | None = None  # set by finish()
        self.initial_grad_mode = torch.is_grad_enabled()
        # Mutable Python objects read from outside (lists, plain objects): one variable per
        # object, with every source it was reached by, so mutations through one name are seen
        # through the others (and guarded when they matter).
        self.mutable_objects: dict[int, MutableObject] = {}
        self._plans: dict[int, OutputPlan] = {}

    # -- inputs --
    def add_tensor_input(self, source: Source, value: torch.Tensor) -> TensorVariable:
        self._tensor_reads.append((source, value))
        existing = self._placeholder_by_id.get(id(value))
        if existing is not None:  # same object under two names: one placeholder
            return TensorVariable(existing.node, existing.example, source)
        fake = self.fake_mode.from_tensor(value, static_shapes=True)
        node = self._insert_placeholder(source.placeholder_name())
        node.meta["example_value"] = fake
        self.input_sources.append(source)
        self.example_inputs.append(value)
        variable = TensorVariable(node, fake, source)
        self._placeholder_by_id[id(value)] = variable
        self._initial_versions[id(value)] = fake._version  # a changed version = mutated in the graph
        return variable

    def _insert_placeholder(self, name: str) -> torch.fx.Node:
        # Placeholders must precede every other node, but inputs are discovered lazily.
        if self._last_placeholder is not None:
            context = self.graph.inserting_after(self._last_placeholder)
        elif len(self.graph.nodes) > 0:
            context = self.graph.inserting_before(next(iter(self.graph.nodes)))
        else:
            context = self.graph.inserting_after(None)
        with context:
            node = self.graph.placeholder(name)
        self._last_placeholder = node
        return node

    # -- ops --
    def call_op(self, kind: str, target, args: list[VariableTracker],
                kwargs: dict[str, VariableTracker]) -> VariableTracker:
        """Record `target(*args, **kwargs)` (kind: call_function / call_method), running it
        on fake tensors to learn the result's metadata."""
        description = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
        node_args = [_as_graph_arg(arg, description, "node") for arg in args]
        node_kwargs = {key: _as_graph_arg(value, description, "node") for key, value in kwargs.items()}
        fake_args = [_as_graph_arg(arg, description, "fake") for arg in args]
        fake_kwargs = {key: _as_graph_arg(value, description, "fake") for key, value in kwargs.items()}
        try:
            with self.fake_mode:
                if kind == "call_method":
                    result = getattr(fake_args[0], target)(*fake_args[1:], **fake_kwargs)
                else:
                    result = target(*fake_args, **fake_kwargs)
        except DATA_DEPENDENT_ERRORS as error:
            raise Unsupported(f"{description}(): result depends on tensor data ({type(error).__name__})") from None
        except Unsupported:
            raise
        except Exception as error:
            raise TorchOpError(f"{description}()", error) from error
        node = self.graph.create_node(kind, target, tuple(node_args), node_kwargs)
        node.meta["stack_trace"] = self.location
        # An op that returns one of its arguments (in-place ops, out=, x.contiguous() on a
        # contiguous x) returns that very object in eager: keep the argument's variable.
        same_as = {id(arg.example): arg for arg in (*args, *kwargs.values()) if isinstance(arg, TensorVariable)}
        return self._wrap_result(node, result, description, same_as)

    def _wrap_result(self, node: torch.fx.Node, result, description: str,
                     same_as: dict[int, TensorVariable]) -> VariableTracker:
        node.meta["example_value"] = result
        if isinstance(result, torch.Tensor):
            return same_as.get(id(result)) or TensorVariable(node, result)
        if result is None:  # setitem and other ops run for their effect: keep the node
            return ConstantVariable(None)
        if isinstance(result, (tuple, list)) and not isinstance(result, torch.Size):
            items = []
            for index, item in enumerate(result):
                if id(item) in same_as:
                    items.append(same_as[id(item)])
                elif isinstance(item, torch.Tensor):
                    item_node = self.graph.call_function(_getitem, (node, index))
                    item_node.meta["example_value"] = item
                    items.append(TensorVariable(item_node, item))
                else:
                    items.append(wrap_constant(item))
            return TupleVariable(items, python_container=type(result))
        if is_constant_value(result):
            self.graph.erase_node(node)  # metadata-only result: a trace-time constant
            return ConstantVariable(result)
        self.graph.erase_node(node)
        raise Unsupported(f"{description}() returned a {type(result).__name__}")

    # -- global grad mode --
    def set_grad_mode(self, mode: bool) -> None:
        """Switch grad mode from here on: in the graph (so the backend computes requires_grad
        as eager does) and in the tracer (so fake tensors do too)."""
        if mode == torch.is_grad_enabled():
            return
        node = self.graph.call_function(torch._C._set_grad_enabled, (mode,))
        node.meta["stack_trace"] = self.location
        torch._C._set_grad_enabled(mode)

    # -- finishing --
    def finish(self, return_value: VariableTracker) -> tuple[torch.fx.GraphModule | None, OutputPlan]:
        """Close the graph: outputs for the return value and for every tensor a side effect
        stores; the replay plan goes to `self.effects_plan`."""
        outputs: list[torch.fx.Node] = []
        plan = self._plan(return_value, outputs)
        final_grad_mode = torch.is_grad_enabled()
        if final_grad_mode != self.initial_grad_mode:  # torch.set_grad_enabled(b) called as a function
            self.set_grad_mode(self.initial_grad_mode)  # the graph leaves global state as it found it...
            self.side_effects.final_grad_mode = final_grad_mode  # ...and the entry sets it after
        self.effects_plan = self.side_effects.plan(lambda value: self._plan(value, outputs))
        self.graph.output(tuple(outputs))
        self._prune_unused_inputs()
        self._add_alias_guards()
        self._add_mutation_alias_guards()
        self._add_storage_guards()
        self.guards.add(Guard(None, "GRAD_MODE", self.initial_grad_mode, noun="grad mode"))
        self.graph.lint()
        has_ops = any(node.op not in ("placeholder", "output") and node.target is not torch._C._set_grad_enabled
                      for node in self.graph.nodes)
        graph_module = torch.fx.GraphModule(torch.nn.Module(), self.graph, class_name="CapturedGraph")
        return (graph_module if has_ops else None), plan

    def _plan(self, value: VariableTracker, outputs: list[torch.fx.Node]) -> OutputPlan:
        if isinstance(value, TensorVariable):
            if value.is_graph_input():
                return FromSource(value.source)
            if value.node not in outputs:
                outputs.append(value.node)
            return FromGraph(outputs.index(value.node))
        if isinstance(value, BaseListVariable) and value.source is None:
            # One plan per container made in the function: built once per call (memo), so a
            # list returned and also stored is one object, as in eager.
            planned = self._plans.get(id(value))
            if planned is None:
                self._plans[id(value)] = _IN_PROGRESS
                planned = Rebuild(value.python_container, tuple(self._plan(item, outputs) for item in value.items))
                self._plans[id(value)] = planned
            elif planned is _IN_PROGRESS:
                raise Unsupported(f"a container that contains itself ({value!r})")
            return planned
        if value.source is not None:
            return FromSource(value.source)
        if value.is_python_constant():
            return Constant(value.as_python_constant())
        raise Unsupported(f"returning {value!r}")

    def _prune_unused_inputs(self) -> None:
        kept_sources, kept_examples = [], []
        placeholders = [node for node in self.graph.nodes if node.op == "placeholder"]
        for node, source, example in zip(placeholders, self.input_sources, self.example_inputs):
            if node.users:
                kept_sources.append(source)
                kept_examples.append(example)
            else:
                self.graph.erase_node(node)
        self.input_sources, self.example_inputs = kept_sources, kept_examples

    def _add_mutation_alias_guards(self) -> None:
        # Replay writes to the objects the trace saw: names that reached one mutated object
        # must still reach one object, and names that reached others must not reach it.
        by_variable = {id(mutable.variable): mutable for mutable in self.mutable_objects.values()}
        for variable in self.side_effects.mutated_variables():
            mutable = by_variable.get(id(variable))
            if mutable is None:  # made in the function, or a module (guarded by identity)
                continue
            first, *others = mutable.sources
            for source in others:
                self.guards.add(Guard(source, "SAME_OBJECT", first, noun="object"))
            for other in self.mutable_objects.values():
                if other is not mutable and type(other.value) is type(mutable.value):
                    self.guards.add(Guard(first, "DIFFERENT_OBJECT", other.sources[0], noun="object"))

    def _add_storage_guards(self) -> None:
        # A backend that rewrites in-place ops (functionalization) relies on which inputs share
        # memory with a mutated input: keep that as it was at trace time.
        inputs = list(zip(self.input_sources, self.example_inputs))
        for source, value in inputs:
            if self._placeholder_by_id[id(value)].example._version == self._initial_versions[id(value)]:
                continue
            for other_source, other in inputs:
                if other is not value:
                    shared = _storage_of(other) == _storage_of(value)
                    self.guards.add(Guard(source, "SAME_STORAGE" if shared else "DIFFERENT_STORAGE", other_source,
                                          noun="mutated tensor"))

    def _add_alias_guards(self) -> None:
        # Inputs that were one object at trace time share a placeholder: keep it that way.
        for (source_a, value_a), (source_b, value_b) in itertools.combinations(self._tensor_reads, 2):
            if source_a == source_b:
                continue
            kind = "SAME_OBJECT" if value_a is value_b else "DIFFERENT_OBJECT"
            self.guards.add(Guard(source_a, kind, source_b, noun="tensor"))


_getitem = operator.getitem  # the fx target for picking one result of a multi-output op
_IN_PROGRESS = Constant(None)  # marks a container whose plan is being built (cycle check)


@dataclass
class MutableObject:
    value: Any                    # kept alive so its id stays unique
    variable: VariableTracker
    sources: list[Source]


def _storage_of(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _as_graph_arg(value: VariableTracker, description: str, form: str):
    """An argument for the fx node (form='node') or for the fake run (form='fake')."""
    if isinstance(value, TensorVariable):
        return value.node if form == "node" else value.example
    if isinstance(value, BaseListVariable):
        container = value.python_container if value.python_container in (tuple, list) else tuple
        return container(_as_graph_arg(item, description, form) for item in value.items)
    if isinstance(value, ConstantVariable):
        return value.value
    if value.is_python_constant() and isinstance(value.as_python_constant(), (torch.dtype, type)):
        return value.as_python_constant()
    raise Unsupported(f"passing {value!r} to {description}()")
