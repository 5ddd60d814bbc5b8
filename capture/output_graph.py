"""Build the fx graph: placeholders for tensor inputs, recorded ops, and the output.

Only tensors flow through the graph. The Python value the function returns is
rebuilt around the graph's results by an `OutputPlan` (plans.py: constants stay
constants, containers are rebuilt, an input returned unchanged is the input).
"""
from __future__ import annotations

import contextlib
import logging
import operator
from typing import Any

import torch
import torch.fx
from torch._guards import TracingContext, tracing
from torch.amp.autocast_mode import _enter_autocast, _exit_autocast
from torch._subclasses.fake_tensor import (DataDependentOutputException, DynamicOutputShapeException,
                                           FakeTensorMode, UnsupportedFakeTensorException)
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

from .dynamic import DynamicPolicy, ShapeSource
from .exc import TorchOpError, Unsupported
from .guards import Guard, GuardSet
from .plans import (Constant, EffectsPlan, FromGraph, FromSource, OutputPlan, Rebuild, RebuildDict, RebuildObject,
                    RebuildSet, Recall, Remember, WithAliases)
from .side_effects import SideEffects
from .sources import FloatTensorSource, ModuleEntrySource, Source, TensorPropertySource
from .variables import (BaseListVariable, ConstantVariable, ListVariable, TensorVariable, TupleVariable,
                        VariableTracker, wrap_constant)
from .variables.builder import MutableObject
from .variables.constant import is_constant_value
from .variables.dicts import ConstDictVariable, SetVariable
from .variables.symbolic import (SYM_TYPES, SliceVariable, SymNodeVariable, constant_value, has_symbols,
                                 sym_or_constant)
from .variables.user_objects import UserObjectVariable

# Fake-tensor failures that mean "needs real data", not "the user made a mistake".
DATA_DEPENDENT_ERRORS = (DataDependentOutputException, DynamicOutputShapeException,
                         UnsupportedFakeTensorException)


def _local_children(value: VariableTracker) -> list[VariableTracker] | None:
    """The items of a mutable container built in the function (None for anything else)."""
    if value.source is not None:
        return None
    if isinstance(value, BaseListVariable) and value.python_container is list:
        return value.items
    if isinstance(value, ConstDictVariable):
        return list(value.items.values())
    if isinstance(value, UserObjectVariable):
        return list(value.attrs.values())
    if isinstance(value, SetVariable):
        return []
    return None  # tuples are immutable: their identity is not observable in the same way


# -- the graph under construction ------------------------------------------------------------

class OutputGraph:
    def __init__(self, code_name: str, policy: DynamicPolicy | None = None):
        self.code_name = code_name
        self.graph = torch.fx.Graph()
        # Symbolic sizes live in the ShapeEnv; data-dependent results (nonzero, item) still raise
        # in fake mode, so they stay graph breaks.
        self.shape_env = ShapeEnv(allow_scalar_outputs=False, allow_dynamic_output_shape_ops=False)
        self.fake_mode = FakeTensorMode(shape_env=self.shape_env)
        self.policy = policy or DynamicPolicy(False, None)
        self.symbol_nodes: dict = {}  # sympy symbol -> its SymInt placeholder
        self.symbol_sources: dict[torch.fx.Node, Source] = {}  # SymInt placeholder -> where its value is read
        self.symbolic_inputs: list[tuple[ShapeSource, Any]] = []  # (source, fake) for the ShapeEnv's guards
        self.fake_mode_held = False  # inside held_fake_mode(): ops run without entering it again
        self.guards = GuardSet()
        self.variables_by_source: dict[Source, VariableTracker] = {}
        self.input_sources: list[Source] = []      # one per placeholder, in placeholder order
        self.example_inputs: list[torch.Tensor] = []
        self._tensor_reads: list[tuple[Source, torch.Tensor]] = []  # every tensor source read, for alias guards
        self._placeholder_by_id: dict[int, TensorVariable] = {}
        self._initial_versions: dict[int, int] = {}
        self._last_placeholder: torch.fx.Node | None = None
        self.instruction_count = 0  # across the frame and every inlined callee (capped)
        self.break_at: int | None = None  # instruction count where a graph break stops the trace
        self.rebuilders: dict[type, Any] = {}  # type -> (variable, plan_item) -> OutputPlan, for breaks
        # type -> variable -> the values a rebuilt one holds (closure cells, their contents), so
        # a container reached through them and elsewhere is rebuilt once (breaks.py)
        self.held_values: dict[type, Any] = {}
        self.location = ""  # "file:line" of the instruction being traced, for node metadata
        self.side_effects = SideEffects()
        self.effects_plan: EffectsPlan | None = None  # set by finish()
        self.initial_grad_mode = torch.is_grad_enabled()
        self.autocast_entered: list = []  # real autocast contexts the trace is inside (variables/autocast.py)
        # Mutable Python objects read from outside (lists, plain objects): one variable per
        # object, with every source it was reached by, so mutations through one name are seen
        # through the others (and guarded when they matter).
        self.mutable_objects: dict[int, MutableObject] = {}

    # -- inputs --
    def add_tensor_input(self, source: Source, value: torch.Tensor) -> TensorVariable:
        self._tensor_reads.append((source, value))
        existing = self._placeholder_by_id.get(id(value))
        if existing is not None:  # same object under two names: one placeholder
            return TensorVariable(existing.node, existing.example, source)
        fake = self._fake_input(source, value)
        node = self._insert_placeholder(source.placeholder_name())
        node.meta["example_value"] = fake
        self.input_sources.append(source)
        self.example_inputs.append(value)
        variable = TensorVariable(node, fake, source)
        self._placeholder_by_id[id(value)] = variable
        self._initial_versions[id(value)] = fake._version  # a changed version = mutated in the graph
        return variable

    def _fake_input(self, source: Source, value: torch.Tensor) -> torch.Tensor:
        """The fake tensor for an input: symbolic in the dims the policy picks (module parameters
        and buffers stay static, as in TorchDynamo), each new symbol lifted as a SymInt
        placeholder before it, fed from `x.size()[d]` (TorchDynamo's graph format)."""
        static = isinstance(value, torch.nn.Parameter) or isinstance(source, ModuleEntrySource)
        dims = set() if static else self.policy.tensor_dims(source, value)
        if not dims:
            return self.fake_mode.from_tensor(value, static_shapes=True)
        marked = getattr(value, "_dynamo_dynamic_indices", ())
        kinds = [(DimDynamic.DYNAMIC if dim in marked else DimDynamic.DUCK) if dim in dims else DimDynamic.STATIC
                 for dim in range(value.dim())]
        context = StatelessSymbolicContext(dynamic_sizes=kinds, constraint_sizes=[None] * value.dim())
        fake = self.fake_mode.from_tensor(value, source=ShapeSource(source), symbolic_context=context)
        self.symbolic_inputs.append((ShapeSource(source), fake))
        properties = [("size", dim, size) for dim, size in enumerate(fake.shape)]
        properties += [("stride", dim, stride) for dim, stride in enumerate(fake.stride())]
        properties.append(("storage_offset", None, fake.storage_offset()))
        for prop, index, symbolic in properties:
            expr = getattr(getattr(symbolic, "node", None), "expr", None)
            if expr is not None and expr.is_symbol and expr not in self.symbol_nodes:
                self._add_symbol_input(TensorPropertySource(source, prop, index), symbolic, str(expr))
        return fake

    def _add_symbol_input(self, source: Source, value, name: str) -> torch.fx.Node:
        node = self._insert_placeholder(name)
        node.type = type(value)  # printed as `s0 : torch.SymInt`, as TorchDynamo's graphs are
        node.meta["example_value"] = value
        self.symbol_nodes[value.node.expr] = node
        self.symbol_sources[node] = source
        self.input_sources.append(source)
        self.example_inputs.append(value)  # TorchDynamo hands a backend the SymInt itself
        return node

    def add_int_input(self, source: Source, value: int) -> SymNodeVariable:
        """An int argument that varies between calls: a SymInt graph input (automatic dynamic)."""
        symbolic = self.shape_env.create_unspecified_symint_and_symbol(value, ShapeSource(source), DimDynamic.DYNAMIC)
        self.symbolic_inputs.append((ShapeSource(source), symbolic))
        node = self._add_symbol_input(source, symbolic, source.placeholder_name())
        return SymNodeVariable(node, symbolic, source)

    def add_float_input(self, source: Source, value: float) -> SymNodeVariable:
        """A float argument that varies between calls, in TorchDynamo's form: a 0-dim float64
        tensor input (fed from `as_float_tensor(L['s'])`) read back by `.item()`, a SymFloat whose
        uses are recorded and whose specialisations (a branch on it) are guards."""
        shape_source = ShapeSource(source)
        symbol = self.shape_env.create_unspecified_symbol(value, shape_source, DimDynamic.DYNAMIC)
        symbolic = self.shape_env.create_symfloatnode(symbol, hint=value, source=shape_source)
        self.symbolic_inputs.append((shape_source, symbolic))
        example = torch.tensor(value, dtype=torch.float64)
        node = self._insert_placeholder(source.placeholder_name())
        node.meta["example_value"] = self.fake_mode.from_tensor(example, static_shapes=True)
        self.input_sources.append(FloatTensorSource(source))
        self.example_inputs.append(example)
        item = self.graph.call_method("item", (node,))
        item.meta["example_value"] = symbolic
        return SymNodeVariable(item, symbolic, source)

    def size_variable(self, value, target, args: tuple) -> VariableTracker:
        """A size read from a tensor (`x.shape[0]`, `x.numel()`): a constant when static, the
        symbol's placeholder when it is an input's symbol, else a `target(*args)` node
        (torch.ops.aten.sym_size.int & co)."""
        def node_for() -> torch.fx.Node:
            node = self.symbol_nodes.get(value.node.expr)
            if node is None:
                node = self.graph.call_function(target, args)
                node.meta["example_value"] = value
                node.meta["stack_trace"] = self.location
            return node
        return sym_or_constant(node_for, value)

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

    @contextlib.contextmanager
    def held_fake_mode(self):
        """Stay in the fake mode for a whole trace (entering and leaving it per op cost ~15 µs,
        5-9% of a capture). Only the fake-tensor ops run in it: every real tensor the trace
        meets is an input, turned fake by `from_tensor`; guards, the backend and break entries
        run after it is left."""
        with self.fake_mode:
            self.fake_mode_held = True
            try:
                yield
            finally:
                self.fake_mode_held = False
                while self.autocast_entered:  # a trace that stopped inside `with torch.autocast(...)`
                    _exit_autocast(self.autocast_entered.pop())

    def _run_fake(self, kind: str, target, fake_args: list, fake_kwargs: dict):
        if kind == "call_method":
            return getattr(fake_args[0], target)(*fake_args[1:], **fake_kwargs)
        return target(*fake_args, **fake_kwargs)

    # -- ops --
    def call_op(self, kind: str, target, args: list[VariableTracker],
                kwargs: dict[str, VariableTracker]) -> VariableTracker:
        """Record `target(*args, **kwargs)` (kind: call_function / call_method), running it
        on fake tensors to learn the result's metadata."""
        description = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
        node_args, fake_args = _as_graph_args(args, description)
        node_kwargs, fake_kwargs = {}, {}
        for key, value in kwargs.items():
            node_kwargs[key], fake_kwargs[key] = _as_graph_arg(value, description)
        symbolic = any(map(has_symbols, (*args, *kwargs.values())))
        try:
            with _quiet_fake_errors() if symbolic else contextlib.nullcontext():
                result = self._run_fake_op(kind, target, fake_args, fake_kwargs, description)
        except TorchOpError:
            if not symbolic:
                raise
            # Some ops' meta functions take no symbolic arguments (F.pad, interpolate's sizes):
            # specialise those arguments (guarded) and run the op again.
            args = [_specialised(arg) for arg in args]
            kwargs = {key: _specialised(value) for key, value in kwargs.items()}
            node_args, fake_args = _as_graph_args(args, description)
            node_kwargs, fake_kwargs = {}, {}
            for key, value in kwargs.items():
                node_kwargs[key], fake_kwargs[key] = _as_graph_arg(value, description)
            result = self._run_fake_op(kind, target, fake_args, fake_kwargs, description)
        node = self.graph.create_node(kind, target, tuple(node_args), node_kwargs)
        node.meta["stack_trace"] = self.location
        # An op that returns one of its arguments (in-place ops, out=, x.contiguous() on a
        # contiguous x) returns that very object in eager: keep the argument's variable.
        same_as = {id(arg.example): arg for arg in (*args, *kwargs.values()) if isinstance(arg, TensorVariable)}
        return self._wrap_result(node, result, description, same_as)

    def _run_fake_op(self, kind: str, target, fake_args: list, fake_kwargs: dict, description: str):
        try:
            if self.fake_mode_held:
                return self._run_fake(kind, target, fake_args, fake_kwargs)
            with self.fake_mode:
                return self._run_fake(kind, target, fake_args, fake_kwargs)
        except DATA_DEPENDENT_ERRORS as error:
            raise Unsupported(f"{description}(): result depends on tensor data ({type(error).__name__})") from None
        except Unsupported:
            raise
        except Exception as error:
            failure = TorchOpError(f"{description}()", error)
            failure.symbolic = bool(self.symbolic_inputs)  # api.py then tries a static trace
            raise failure from error

    def _wrap_result(self, node: torch.fx.Node, result, description: str,
                     same_as: dict[int, TensorVariable]) -> VariableTracker:
        node.meta["example_value"] = result
        if isinstance(result, SYM_TYPES):
            if constant_value(result) is not None:
                self.graph.erase_node(node)
                return wrap_constant(constant_value(result))
            return SymNodeVariable(node, result)
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
                elif isinstance(item, SYM_TYPES):
                    items.append(sym_or_constant(lambda: self._item_node(node, index, item), item))
                else:
                    items.append(wrap_constant(item))
            return TupleVariable(items, python_container=type(result))
        if is_constant_value(result):
            self.graph.erase_node(node)  # metadata-only result: a trace-time constant
            return ConstantVariable(result)
        self.graph.erase_node(node)
        raise Unsupported(f"{description}() returned a {type(result).__name__}")

    def _item_node(self, node: torch.fx.Node, index: int, item) -> torch.fx.Node:
        item_node = self.graph.call_function(_getitem, (node, index))
        item_node.meta["example_value"] = item
        return item_node

    def backend_context(self):
        """Where the backend compiles a graph of symbolic sizes: under a TracingContext holding
        the trace's fake mode, as TorchDynamo calls it, so a backend that fakifies the example
        inputs again (Inductor's detect_fake_mode) gets these fake tensors and this ShapeEnv."""
        if not self.symbolic_inputs:
            return contextlib.nullcontext()
        return tracing(TracingContext(self.fake_mode))

    def shape_guards(self) -> list[Guard]:
        """The relations the ShapeEnv recorded on the symbolic inputs, one guard each. Called after
        the backend compiled the graph: it shares the ShapeEnv and may have added guards."""
        if not self.symbolic_inputs:
            return []
        sources, values = zip(*self.symbolic_inputs)
        # ignore_static=False: a symbol specialised while tracing (`if x.shape[0] == 2`, `range(n)`)
        # is guarded here; the tensor guards were built when it was still a symbol
        expressions = self.shape_env.produce_guards(list(values), list(sources), ignore_static=False)
        return [Guard(None, "SHAPE_EXPR", text, noun="size") for text in expressions]

    # -- global state --
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
        plan = self._plan_with_aliases(return_value, outputs, self.side_effects.stored_values())
        final_grad_mode = torch.is_grad_enabled()
        if final_grad_mode != self.initial_grad_mode:  # torch.set_grad_enabled(b) called as a function
            self.set_grad_mode(self.initial_grad_mode)  # the graph leaves global state as it found it...
            self.side_effects.final_grad_mode = final_grad_mode  # ...and the entry sets it after
        self.effects_plan = self.side_effects.plan(lambda value: self._plan(value, outputs))
        if self._shared and self.effects_plan is None:  # (with effects, EffectsPlan.run opens the memo)
            plan = WithAliases(plan)
        self.graph.output(tuple(outputs))
        self._prune_unused_inputs()
        self._add_alias_guards()
        self._add_mutation_alias_guards()
        self._add_storage_guards()
        self.guards.add(Guard(None, "GRAD_MODE", self.initial_grad_mode, noun="grad mode"))
        for query in autocast_state():  # the graph's ops were traced under (and cast by) the caller's autocast
            self.guards.add(Guard(None, "GLOBAL_QUERY", query, noun="autocast state"))
        self.graph.lint()
        has_ops = any(node.op not in ("placeholder", "output") and node.target not in STATE_SWITCHES
                      for node in self.graph.nodes)
        graph_module = torch.fx.GraphModule(torch.nn.Module(), self.graph, class_name="CapturedGraph")
        return (graph_module if has_ops else None), plan

    def _plan_with_aliases(self, value: VariableTracker, outputs: list[torch.fx.Node],
                           stored: list[VariableTracker] = ()) -> OutputPlan:
        """Plan the return value; containers reached twice (here or from `stored`, the values
        side effects write) become Remember/Recall. Call WithAliases (or EffectsPlan.run)."""
        counts: dict[int, int] = {}
        self._walked: set[int] = set()
        for root in (value, *stored):
            self._count_references(root, counts)
        self._shared = {key: None for key, count in counts.items() if count > 1}  # id -> slot once planned
        self._planning: set[int] = set()
        return self._plan(value, outputs)

    def _count_references(self, value: VariableTracker, counts: dict[int, int]) -> None:
        children = _local_children(value)
        if children is None and isinstance(value, BaseListVariable):
            children = value.items
        if children is None:
            held = self.held_values.get(type(value))
            if held is not None and id(value) not in self._walked:  # (cells can hold functions over themselves)
                self._walked.add(id(value))
                for child in held(value):
                    self._count_references(child, counts)
            return
        key = id(value)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            for child in children:
                self._count_references(child, counts)

    def _plan(self, value: VariableTracker, outputs: list[torch.fx.Node]) -> OutputPlan:
        key = id(value)
        if key in getattr(self, "_shared", ()) and _local_children(value) is not None:
            if key in self._planning:
                raise Unsupported("returning a container that contains itself")
            if self._shared[key] is not None:
                return Recall(self._shared[key])
            self._planning.add(key)
            plan = self._plan_value(value, outputs)
            self._planning.discard(key)
            self._shared[key] = slot = len([s for s in self._shared.values() if s is not None])
            return Remember(slot, plan)
        return self._plan_value(value, outputs)

    def _plan_value(self, value: VariableTracker, outputs: list[torch.fx.Node]) -> OutputPlan:
        if isinstance(value, SymNodeVariable) and value.node in self.symbol_sources:  # an input's size
            return FromSource(self.symbol_sources[value.node])
        if isinstance(value, SymNodeVariable) and value.source is None:  # a computed size: a graph output
            if value.node not in outputs:
                outputs.append(value.node)
            return FromGraph(outputs.index(value.node))
        if isinstance(value, TensorVariable):
            if value.is_graph_input():
                return FromSource(value.source)
            if value.node not in outputs:
                outputs.append(value.node)
            return FromGraph(outputs.index(value.node))
        if isinstance(value, BaseListVariable) and value.source is None:
            return Rebuild(value.python_container, tuple(self._plan(item, outputs) for item in value.items))
        if isinstance(value, ConstDictVariable) and value.source is None:
            return RebuildDict(value.user_cls, tuple(value.items),
                               tuple(self._plan(item, outputs) for item in value.items.values()))
        if isinstance(value, SetVariable) and value.source is None:
            return RebuildSet(frozenset(value.items))
        if isinstance(value, UserObjectVariable) and value.source is None:
            return RebuildObject(value.cls, tuple(value.attrs),
                                 tuple(self._plan(item, outputs) for item in value.attrs.values()))
        if value.source is not None:
            return FromSource(value.source)
        if value.is_python_constant():
            return Constant(value.as_python_constant())
        rebuild = self.rebuilders.get(type(value))  # at a graph break: method objects, iterators... (breaks.py)
        if rebuild is not None:
            return rebuild(value, lambda item: self._plan(item, outputs))
        raise Unsupported(f"returning {value!r}")

    def _prune_unused_inputs(self) -> None:
        kept_sources, kept_examples = [], []
        placeholders = [node for node in self.graph.nodes if node.op == "placeholder"]
        bound = set()  # symbols a kept tensor input's metadata uses: their placeholders stay (Dynamo's format)
        for node, example in zip(placeholders, self.example_inputs):
            if node.users and isinstance(example, torch.Tensor):
                bound |= _free_symbols(node.meta["example_value"])
        for node, source, example in zip(placeholders, self.input_sources, self.example_inputs):
            if node.users or (isinstance(example, torch.SymInt) and example.node.expr in bound):
                kept_sources.append(source)
                kept_examples.append(example)
            else:
                self.graph.erase_node(node)
        self.input_sources, self.example_inputs = kept_sources, kept_examples

    def _add_mutation_alias_guards(self) -> None:
        # Replay writes to the objects the trace saw: names that reached one mutated object
        # must still reach one object, and names that reached others must not reach it
        # (grouped by type: one OBJECTS_APART guard per type, linear in the objects).
        by_variable = {id(mutable.variable): mutable for mutable in self.mutable_objects.values()}
        mutated_by_type: dict[type, dict[int, MutableObject]] = {}
        for variable in self.side_effects.mutated_variables():
            mutable = by_variable.get(id(variable))
            if mutable is None:  # made in the function, or a module (guarded by identity)
                continue
            first, *others = mutable.sources
            for source in others:
                self.guards.add(Guard(source, "SAME_OBJECT", first, noun="object"))
            mutated_by_type.setdefault(type(mutable.value), {})[id(mutable)] = mutable
        for kind, mutated in mutated_by_type.items():
            rest = tuple(other.sources[0] for other in self.mutable_objects.values()
                         if type(other.value) is kind and id(other) not in mutated)
            first, *more = (mutable.sources[0] for mutable in mutated.values())
            if more or rest:
                self.guards.add(Guard(first, "OBJECTS_APART", (tuple(more), rest), noun="object"))

    def _add_storage_guards(self) -> None:
        # A backend that rewrites in-place ops (functionalization) relies on which inputs share
        # memory with a mutated input: keep that as it was at trace time. Grouped by storage, so
        # the guards are linear in the number of inputs.
        groups: dict[int, list[Source]] = {}
        mutated_groups: list[int] = []
        for source, value in zip(self.input_sources, self.example_inputs):
            if not isinstance(value, torch.Tensor) or id(value) not in self._placeholder_by_id:  # a SymInt, a float
                continue
            storage = _storage_of(value)
            groups.setdefault(storage, []).append(source)
            mutated = self._placeholder_by_id[id(value)].example._version != self._initial_versions[id(value)]
            if mutated and storage not in mutated_groups:
                mutated_groups.append(storage)
        if not mutated_groups:
            return
        for storage in mutated_groups:  # a mutated input's memory is shared by exactly its group
            first, *others = groups[storage]
            for source in others:
                self.guards.add(Guard(source, "SAME_STORAGE", first, noun="tensor"))
        firsts = [groups[storage][0] for storage in mutated_groups]
        mutated = set(mutated_groups)
        rest = tuple(source for storage, sources in groups.items() if storage not in mutated for source in sources)
        self.guards.add(Guard(firsts[0], "STORAGES_APART", (tuple(firsts[1:]), rest), noun="mutated tensor"))

    def _add_alias_guards(self) -> None:
        # Inputs that were one object at trace time share a placeholder: keep it that way, and
        # keep different objects different (grouped by object: linear in the number of reads).
        first_source: dict[int, Source] = {}
        for source, value in self._tensor_reads:
            first = first_source.setdefault(id(value), source)
            if first != source:
                self.guards.add(Guard(source, "SAME_OBJECT", first, noun="tensor"))
        first, *others = first_source.values() or [None]
        if others:
            self.guards.add(Guard(first, "DISTINCT_OBJECTS", tuple(others), noun="tensor"))


_getitem = operator.getitem  # the fx target for picking one result of a multi-output op


def _storage_of(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _as_graph_args(values: list[VariableTracker], description: str) -> tuple[list, list]:
    node_args, fake_args = [], []
    for value in values:
        node_arg, fake_arg = _as_graph_arg(value, description)
        node_args.append(node_arg)
        fake_args.append(fake_arg)
    return node_args, fake_args


@contextlib.contextmanager
def _quiet_fake_errors():
    """Fake mode logs each failing meta function; one that fails on symbolic arguments is run
    again with them specialised (call_op), so that failure is not the user's concern."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    saved, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = saved


def _specialised(value: VariableTracker) -> VariableTracker:
    """`value` with its symbolic scalars made constants (each guarded by the ShapeEnv)."""
    if isinstance(value, (SymNodeVariable, SliceVariable)):
        return wrap_constant(value.as_python_constant())
    if isinstance(value, BaseListVariable) and has_symbols(value):
        kind = ListVariable if value.python_container is list else TupleVariable
        return kind([_specialised(item) for item in value.items], python_container=value.python_container)
    return value


def _free_symbols(fake: torch.Tensor) -> set:
    values = (*fake.shape, *fake.stride(), fake.storage_offset())
    return {symbol for value in values if isinstance(value, torch.SymInt) for symbol in value.node.expr.free_symbols}


def _as_graph_arg(value: VariableTracker, description: str) -> tuple[Any, Any]:
    """The argument for the fx node and for the fake run."""
    if isinstance(value, TensorVariable):
        return value.node, value.example
    if isinstance(value, SymNodeVariable):
        return value.node, value.value
    if isinstance(value, SliceVariable):
        return value.graph_arg()
    if isinstance(value, ConstantVariable):
        return value.value, value.value
    if isinstance(value, BaseListVariable):
        container = value.python_container if value.python_container in (tuple, list) else tuple
        node_items, fake_items = _as_graph_args(value.items, description)
        return container(node_items), container(fake_items)
    if value.is_python_constant() and isinstance(value.as_python_constant(), (torch.dtype, type)):
        return value.as_python_constant(), value.as_python_constant()
    raise Unsupported(f"passing {value!r} to {description}()")


STATE_SWITCHES = (torch._C._set_grad_enabled, _enter_autocast, _exit_autocast)  # graph nodes that compute nothing
AUTOCAST_DEVICES = ("cpu", "cuda")


def autocast_state() -> list[tuple]:
    """GLOBAL_QUERY guards' (function, args, kwargs, value) for the autocast state the frame runs
    under: a graph traced outside `torch.autocast` must not run inside one, nor the other way round."""
    out = []
    for device in AUTOCAST_DEVICES:
        enabled = torch.is_autocast_enabled(device)
        out.append((torch.is_autocast_enabled, (device,), (), enabled))
        if enabled:
            out.append((torch.get_autocast_dtype, (device,), (), torch.get_autocast_dtype(device)))
    return out
