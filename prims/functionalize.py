"""Functionalization: an ATen graph with in-place ops, out= ops and writes through views -> a pure one.

PyTorch's scheme, on Kiln's graph. Every tensor of the traced program lives in a storage; a storage
holds the current value of its root tensor (the allocation) as one node of the new graph, and a
version. Any other tensor of that storage is a chain of view steps from the root (view_replay.py).
- A read of a tensor whose storage changed since its value was made replays its chain on the
  root's current value (view replay).
- An in-place op becomes its functional twin (add_ -> add, foo.out -> foo); the result is written
  to the mutated tensor, and through its chain back into the root (slice -> slice_scatter, ...),
  which bumps the storage's version.
- A graph input whose storage was written gets its final value as an extra graph output, and an
  InputMutation in gm.meta[MUTATIONS_KEY] tells the caller to copy it back in place.
- Outputs that alias inputs, constants or each other get a ViewOf (graph_io.py), found from the
  eager storages recorded by the tracer, so the caller can hand back views exactly as eager does.

Eager storages the op schemas do not explain (e.g. `_unsafe_view` sharing its input's storage) are
"hidden aliases": a write to one makes the others stale, and reading a stale tensor raises
UnsupportedGraph rather than risk a wrong answer. So do storage mutations (resize_, set_) and writes to
module constants. A write through a view with no inverse (a broadcasting expand, unfold, ...) or into
memory several elements share (an expanded input) runs the op as is on a copy of the storage's root,
laid out as eager's (write_on_copy.py): an op-level fallback giving the root's new value. Metadata
mutations (t_, unsqueeze_, as_strided_, ...) make the tensor a view of its old self; an input so
changed gets its final (shape, strides, offset) in its InputMutation.
"""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensorMode

from . import view_replay as V
from .aten_trace import IDENTITY_KEY, Identity
from .builder import META_KEY
from .eager_strides import is_dense, restride_like_eager
from .errors import UnsupportedGraph, WrittenConstants
from .graph_io import FUNCTIONAL_KEY, MUTATIONS_KEY, OUTPUTS_KEY, InputMutation, OutputInfo, ViewOf
from .meta import TensorMeta, contiguous_strides
from .write_on_copy import WRITE_ON_COPY, WRITTEN, broadcast_only_overlap, plan

aten = torch.ops.aten


def functionalize(aten_gm: fx.GraphModule) -> fx.GraphModule:
    """A pure ATen GraphModule computing what `aten_gm` computes, with input mutations and output
    aliasing recorded in its meta (graph_io.py). A graph with nothing to rewrite is returned itself,
    its meta completed."""
    if aten_gm.meta.get(FUNCTIONAL_KEY):
        return aten_gm
    if _annotated_in_place(aten_gm):
        return aten_gm
    return _Functionalizer(aten_gm).run()


class _NeedsRewrite(Exception):
    pass


def _annotated_in_place(gm: fx.GraphModule) -> bool:
    """The common case costs one pass: a graph with no in-place op, no list-returning view and no
    output viewing a hidden intermediate is already pure; only its output facts are added."""
    allocation, input_index = {}, {}
    for node in gm.graph.nodes:
        if node.op == "call_function" and isinstance(node.target, OpOverload) and \
                (node.target._schema.is_mutable or (V.is_view(node.target) and V.returns_list(node.target))
                 or _updates_running_stats(node)):
            return False
        if node.op == "placeholder":
            input_index[node] = len(input_index)
        if IDENTITY_KEY in node.meta:
            allocation.setdefault(node.meta[IDENTITY_KEY].storage, node)
    output = next(iter(reversed(gm.graph.nodes)))
    infos = list(gm.meta[OUTPUTS_KEY])

    def add_base(root):
        raise _NeedsRewrite

    try:
        _alias_outputs(list(output.args[0]), infos, allocation, input_index, add_base)
    except _NeedsRewrite:
        return False
    gm.meta[OUTPUTS_KEY], gm.meta[MUTATIONS_KEY], gm.meta[FUNCTIONAL_KEY] = infos, (), True
    return True


class _Storage:
    """One eager storage: the current value of its root tensor (a new-graph node)."""

    __slots__ = ("value", "root", "key", "version", "stale")

    def __init__(self, value: fx.Node, root: fx.Node, key: int):
        self.value, self.root, self.key, self.version, self.stale = value, root, key, 0, False


class _Alias:
    """A tensor of the old graph: its storage, the view steps from the root, its value at `version`."""

    __slots__ = ("storage", "chain", "value", "version")

    def __init__(self, storage: _Storage, chain: tuple, value: fx.Node, version: int):
        self.storage, self.chain, self.value, self.version = storage, chain, value, version


class _Functionalizer:
    def __init__(self, old: fx.GraphModule):
        self.old = old
        self.graph = fx.Graph()
        self.env: dict[fx.Node, object] = {}  # old node -> new node, for results that are not tensors
        self.aliases: dict[fx.Node, _Alias] = {}  # old tensor node -> its alias
        self.storages: dict[int, list[_Storage]] = {}  # eager storage key -> functional storages
        self.allocation: dict[int, fx.Node] = {}  # eager storage key -> first old node in it
        self.views: dict[tuple, fx.Node] = {}  # (id(storage), version, chain) -> value
        self.list_views: dict[fx.Node, fx.Node] = {}  # old list-returning view node -> its parent
        self.results: dict[fx.Node, list] = {}  # old multi-output mutating node -> per item: ("alias", arg) | ("fresh", new node, i)
        self.input_index: dict[fx.Node, int] = {}
        self.mutated: list[fx.Node] = []  # old placeholders whose memory was written, in order of first write
        self.storage_sets: dict[fx.Node, fx.Node] = {}  # old placeholder -> the last set_ giving it a storage
        self.shared_inputs: dict[fx.Node, fx.Node] = {}  # old placeholder sharing a written storage -> its copy
        self.latest: dict[int, fx.Node] = {}  # eager tensor -> the last node that is it (its final metadata)
        self.fake_mode: FakeTensorMode | None = None
        self.fakes: dict[fx.Node, torch.Tensor] = {}
        self.written_constants: list[str] = []  # get_attr targets written in place (refused at the end)

    # -- values ---------------------------------------------------------------------------
    def read(self, old: fx.Node) -> fx.Node:
        """The new node holding `old`'s current value (replaying its views if its storage changed)."""
        a = self.aliases.get(old)
        if a is None:
            return self.env[old]
        if a.storage.stale:
            raise UnsupportedGraph(f"{old.name} shares storage with a tensor written in place, in a way "
                                   "the op schemas do not say (hidden alias)")
        if a.version != a.storage.version:
            a.value, a.version = self._view_value(a.storage, a.chain), a.storage.version
        return a.value

    def _view_value(self, s: _Storage, chain: tuple) -> fx.Node:
        if not chain:
            return s.value
        key = (id(s), s.version, chain)
        hit = self.views.get(key)
        if hit is None:
            self._check_as_strided(s, chain)
            hit = self.emit(*V.replay(chain[-1], self._view_value(s, chain[:-1])))
            self.views[key] = hit
        return hit

    def _check_as_strided(self, s: _Storage, chain: tuple):
        """as_strided addresses storage, not values: only replayable straight off a contiguous root."""
        if any(step.op is aten.as_strided.default for step in chain):
            root_meta, facts = s.root.meta[META_KEY], s.root.meta[IDENTITY_KEY]
            contiguous = root_meta.strides == contiguous_strides(root_meta.shape)
            if chain[0].op is not aten.as_strided.default or any(st.op is aten.as_strided.default for st in chain[1:]) \
                    or not contiguous or facts.offset != 0:
                raise UnsupportedGraph("as_strided on a tensor that is later written in place, other than straight "
                                       "off a contiguous base")

    def _new_root(self, old: fx.Node, new: fx.Node):
        facts = old.meta.get(IDENTITY_KEY)
        if facts is None:  # not a tensor (or a tuple of them)
            self.env[old] = new
            return
        s = _Storage(new, old, facts.storage)
        self.storages.setdefault(facts.storage, []).append(s)
        self.allocation.setdefault(facts.storage, old)
        self.aliases[old] = _Alias(s, (), new, 0)

    def _new_view(self, old: fx.Node, parent: fx.Node, step: V.ViewStep, new: fx.Node | None):
        """`old` = step applied to `parent`; `new` is its node when the storage was never written."""
        pa = self.aliases[parent]
        s = pa.storage
        chain = pa.chain + (step,)
        if new is None or s.version:
            self.read(parent)  # raises on stale storages
            new = self._view_value(s, chain)
        self.views.setdefault((id(s), s.version, chain), new)
        self.aliases[old] = _Alias(s, chain, new, s.version)

    # -- emitting new nodes (their metas come from running the op on fake tensors) ---------------
    def emit(self, op, args, kwargs=None, meta=None) -> fx.Node:
        kwargs = kwargs or {}
        if meta is not None:
            node = self.graph.call_function(op, args, kwargs)
            node.meta[META_KEY] = meta
            return node
        if self.fake_mode is None:
            self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        fargs, fkwargs = fx.node.map_arg((args, kwargs), self._fake)
        with self.fake_mode:
            out = restride_like_eager(op, fargs, fkwargs, op(*fargs, **fkwargs))
        node = self.graph.call_function(op, args, kwargs)
        if isinstance(out, torch.Tensor):
            node.meta[META_KEY] = TensorMeta.of(out)
            self.fakes[node] = out
        else:
            node.meta[META_KEY] = tuple(TensorMeta.of(o) if isinstance(o, torch.Tensor) else None for o in out)
        return node

    def _getitem(self, node: fx.Node, i: int) -> fx.Node:
        item = self.graph.call_function(operator.getitem, (node, i))
        item.meta[META_KEY] = node.meta[META_KEY][i]
        return item

    def _fake(self, node: fx.Node) -> torch.Tensor:
        fake = self.fakes.get(node)
        if fake is None:
            m = node.meta[META_KEY]
            with self.fake_mode:
                fake = torch.empty_strided(m.shape, m.strides, dtype=m.dtype, device=m.device)
            self.fakes[node] = fake
        return fake

    # -- the walk -----------------------------------------------------------------------------
    def run(self) -> fx.GraphModule:
        shared = _written_shared_inputs(self.old)
        pending = bool(shared)
        for node in self.old.graph.nodes:
            if IDENTITY_KEY in node.meta:
                self.latest[node.meta[IDENTITY_KEY].tensor] = node
            if node.op == "placeholder":
                self.input_index[node] = len(self.input_index)
                if node in shared:
                    self.shared_inputs[node] = self.graph.node_copy(node)
                else:
                    self._new_root(node, self.graph.node_copy(node))
                continue
            if pending:  # every input is in: the storages some of them share
                self._shared_storages(shared)
                pending = False
            if node.op == "get_attr":
                self._new_root(node, self.graph.node_copy(node))
            elif node.op == "call_function" and node.target is operator.getitem:
                self._item(node)
            elif node.op == "call_function" and isinstance(node.target, OpOverload):
                op = node.target
                if V.is_view(op):
                    self._view(node)
                elif op._schema.is_mutable:
                    self._mutation(node)
                elif _updates_running_stats(node):
                    self._batch_norm(node)
                else:
                    self._new_root(node, self.graph.node_copy(node, self.read))
            elif node.op == "output":
                self._outputs(node)
            else:
                raise UnsupportedGraph(f"unexpected node {node.format_node()} in an ATen graph")
        if self.written_constants:
            names = ", ".join(self.written_constants)
            raise WrittenConstants(f"in-place write to the constant tensor(s) {names} (module attributes)",
                                   [getattr(self.old, t) for t in self.written_constants])
        gm = fx.GraphModule(self.old, self.graph)
        gm.meta.update(self.old.meta)
        gm.meta[OUTPUTS_KEY], gm.meta[MUTATIONS_KEY] = self.infos, tuple(self.mutations)
        gm.meta[FUNCTIONAL_KEY] = True
        return gm

    def _shared_storages(self, shared: dict):
        """Graph inputs sharing a storage the graph writes become views of one value of that memory
        (a synthetic base, as AOTAutograd's): a flat tensor holding each input at its offset, so a write
        to one is seen by the others (as_strided_scatter / as_strided, straight off a contiguous root)."""
        groups: dict[int, list[fx.Node]] = {}
        for p in self.shared_inputs:
            groups.setdefault(shared[p], []).append(p)
        for key, members in groups.items():
            metas = [p.meta[META_KEY] for p in members]
            if len({(m.dtype, m.device) for m in metas}) > 1 or any(_overlapping(m) for m in metas):
                for p in members:  # reinterpreted or overlapping memory: each on its own (a read after a write refuses)
                    self._new_root(p, self.shared_inputs[p])
                continue
            spans = [(p.meta[IDENTITY_KEY].offset, _extent(m)) for p, m in zip(members, metas)]
            lo = min((off for off, n in spans if n), default=0)
            size = max((off + n - lo for off, n in spans if n), default=0)
            m0 = metas[0]
            root = _SharedInputs(members, TensorMeta((size,), m0.dtype, (1,), m0.device), key)
            value = self.emit(aten.full.default, ([size], 0), {"dtype": m0.dtype, "device": m0.device},
                              meta=root.meta[META_KEY])
            for p, m, (off, n) in zip(members, metas, spans):
                if n:
                    value = self.emit(aten.as_strided_scatter.default,
                                      (value, self.shared_inputs[p], list(m.shape), list(m.strides), off - lo))
            s = _Storage(value, root, key)
            self.storages.setdefault(key, []).append(s)
            self.allocation.setdefault(key, members[0])
            for p, m, (off, n) in zip(members, metas, spans):
                step = V.ViewStep(aten.as_strided.default, (list(m.shape), list(m.strides), max(off - lo, 0)))
                self.aliases[p] = _Alias(s, (step,), self.shared_inputs[p], 0)
                self.views.setdefault((id(s), 0, (step,)), self.shared_inputs[p])

    def _view(self, node: fx.Node):
        op, parent = node.target, node.args[0]
        if parent not in self.aliases or any(isinstance(a, fx.Node) for a in (*node.args[1:], *node.kwargs.values())):
            raise UnsupportedGraph(f"view op {op} with tensor arguments besides its input")
        if V.returns_list(op):  # split / unbind: each item becomes its own slice / select
            self.list_views[node] = parent
            return
        new = None if self.aliases[parent].storage.version else self.graph.node_copy(node, self.read)
        self._new_view(node, parent, V.ViewStep(op, node.args[1:], node.kwargs), new)

    def _item(self, node: fx.Node):
        src, i = node.args
        if src in self.list_views:
            parent = self.list_views[src]
            step = V.item_step(src.target, src.args, src.kwargs, parent.meta[META_KEY].shape, i)
            new = None
            if not self.aliases[parent].storage.version:  # the item as it was traced: its meta is eager's
                new = self.emit(*V.replay(step, self.read(parent)), meta=node.meta[META_KEY])
            self._new_view(node, parent, step, new)
        elif src in self.results:
            what = self.results[src][i]
            if what[0] == "alias":
                self._alias_of(node, what[1])
            else:
                self._new_root(node, self._getitem(what[1], what[2]))
        else:
            self._new_root(node, self.graph.node_copy(node, lambda n: self.env[n]))

    # -- mutations ----------------------------------------------------------------------------
    def _mutation(self, node: fx.Node):
        op = node.target
        name = op._schema.name.split("::")[1]
        if op is aten.set_.source_Tensor:
            return self._set_storage(node)
        if name in V.RESIZES:
            return self._resize(node)
        if name in V.STORAGE_MUTATIONS:
            raise UnsupportedGraph(f"{op} changes a tensor's storage, not just its values")
        view = V.metadata_view(op)
        if view is not None:  # t_, unsqueeze_, detach_...: from here on the tensor is that view of its old self
            target, rest = node.args[0], node.args[1:]
            new = None
            if not self.aliases[target].storage.version:
                new = self.emit(view, (self.read(target), *rest), dict(node.kwargs), meta=node.meta[META_KEY])
            self._new_view(node, target, V.ViewStep(view, rest, node.kwargs), new)
            return
        bound = V.bind(op, node.args, node.kwargs, defaults=True)  # the functional twin may lack the defaults
        writes = V.written_args(op)
        targets = [bound.get(a.name) for a in writes]
        if not all(isinstance(t, fx.Node) and t in self.aliases for t in targets):
            raise UnsupportedGraph(f"{op} writes a list of tensors or an optional one (not supported)")
        if len(targets) == 1 and self._writes_memory(targets[0]):
            self._write_on_copy(node, writes[0], targets[0])
            return
        if op in _WRITE_ONLY:
            values, fresh = [_WRITE_ONLY[op](self, targets[0], bound)], None
        else:
            values, fresh = self._functional_call(op, bound, writes)
        for target, value in zip(targets, values):
            self._write(target, self._fit(value, target, op))
        # The op's results: aliases of the arguments it wrote, or fresh outputs of the functional twin.
        returns = op._schema.returns
        per_item = []
        for k, r in enumerate(returns):
            if r.alias_info is not None and r.alias_info.is_write:
                arg = next(a for a in writes if a.alias_info.before_set == r.alias_info.before_set)
                per_item.append(("alias", bound[arg.name]))
            else:
                per_item.append(("fresh", fresh, k))
        if len(returns) == 1 and not V.returns_list(op):
            if per_item[0][0] == "alias":
                self._alias_of(node, per_item[0][1])
            else:  # foo_functional returns (result, new values...)
                self._new_root(node, self._getitem(fresh, 0) if isinstance(fresh.meta[META_KEY], tuple) else fresh)
        else:
            self.results[node] = per_item

    def _resize(self, node: fx.Node):
        """resize_ / resize_as_ / _resize_output_ that keep the tensor within its own elements: a
        metadata change. Its new self is the first numel(new size) elements of its storage from its
        offset, laid out in the new (dense) strides; when the old layout is row-major those are its own
        first elements, so the new self is a chain of views (flatten, slice, view, permute) whose writes
        scatter back as any view's. Growing past its elements (eager's new ones are uninitialised memory,
        or storage beyond the tensor that Kiln does not model) stays refused."""
        target = node.args[0]
        old, new = target.meta[META_KEY], node.meta[META_KEY]
        old_offset, new_offset = target.meta[IDENTITY_KEY].offset, node.meta[IDENTITY_KEY].offset
        if (old.shape, old.strides, old_offset) == (new.shape, new.strides, new_offset):
            self.read(target)  # raises on a stale storage (hidden alias)
            return self._alias_of(node, target)
        n = _numel(new.shape)
        if n > _numel(old.shape) or new_offset != old_offset or not _row_major(old) or not is_dense(new.shape, new.strides):
            raise UnsupportedGraph(f"{node.target} from {list(old.shape)} to {list(new.shape)} (strides "
                                   f"{list(new.strides)}) reaches storage beyond the tensor's own elements")
        order = sorted(range(len(new.shape)), key=lambda d: -new.strides[d])  # storage order of the new dims
        steps = [V.ViewStep(aten.view.default, ([-1],)), V.ViewStep(aten.slice.Tensor, (0, 0, n)),
                 V.ViewStep(aten.view.default, ([new.shape[d] for d in order],))]
        if order != sorted(order):
            steps.append(V.ViewStep(aten.permute.default, ([order.index(d) for d in range(len(order))],)))
        a = self.aliases[target]
        self.read(target)
        chain = a.chain + tuple(steps)
        self.aliases[node] = _Alias(a.storage, chain, self._view_value(a.storage, chain), a.storage.version)

    def _set_storage(self, node: fx.Node):
        """`x.set_(src)` (what `x.data = src` traces to): from here on x is src's alias. A graph input
        so changed takes, after the call, the storage of src's final value (`_outputs`)."""
        target, src = node.args[0], node.args[1]
        tensor = target.meta[IDENTITY_KEY].tensor
        placeholder = next((p for p in self.input_index if p.meta[IDENTITY_KEY].tensor == tensor), None)
        if placeholder is None:
            raise UnsupportedGraph(f"{node.target} on {target.name}, which is not a graph input")
        self.read(src)  # raises on a stale storage (hidden alias)
        self._alias_of(node, src)
        if self.allocation.get(src.meta[IDENTITY_KEY].storage) is placeholder:
            # its own storage (`p.data = p.data.to(p.dtype)`, as `Module.to` does): at most a new
            # layout of the same memory, which the input's final metadata gives as a restride
            self.storage_sets.pop(placeholder, None)
            return
        self.storage_sets[placeholder] = node

    def _storage_mutations(self, olds, infos, values) -> list[InputMutation]:
        """For each input given another storage (set_): the storage's root, as an extra "base" output
        the input then views as eager's does. Only for a storage an op result owns that no user output
        shares (eager's outputs would share it with the input)."""
        out = []
        for p, node in self.storage_sets.items():
            facts = node.meta[IDENTITY_KEY]
            root = self.allocation[facts.storage]
            if root.op != "call_function" or root.meta[IDENTITY_KEY].offset != 0 or sum(
                    self.storage_sets[q].meta[IDENTITY_KEY].storage == facts.storage for q in self.storage_sets) > 1:
                raise UnsupportedGraph(f"{node.target} gives input {p.name} the storage of {root.name}, which is "
                                       "not a fresh op result of its own")
            if any(isinstance(o, fx.Node) and o.meta[IDENTITY_KEY].storage == facts.storage and info.input_index is None
                   for o, info in zip(olds, infos)):
                raise UnsupportedGraph(f"{node.target} gives input {p.name} the storage of an output")
            values.append(self.read(root))
            infos.append(OutputInfo(root.meta[META_KEY], None, role="base"))
            view = _view_of("output", len(values) - 1, node.meta[META_KEY], facts, root)
            out.append(InputMutation(self.input_index[p], None, storage=view))
        return out

    def _batch_norm(self, node: fx.Node):
        """native_batch_norm in training writes its running stats, which its schema does not say."""
        if node.target is not aten.native_batch_norm.default:
            raise UnsupportedGraph(f"{node.target} in training mode updates running statistics in place")
        b = V.bind(node.target, node.args, node.kwargs, defaults=True)
        names = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps")
        args = tuple(fx.node.map_arg(b[n], self.read) for n in names)
        result = self.emit(aten._native_batch_norm_legit_functional.default, args)
        for k, name in ((3, "running_mean"), (4, "running_var")):  # new stats in float32 for 16-bit ones: fit
            self._write(b[name], self._fit(self._getitem(result, k), b[name], node.target))
        self.results[node] = [("fresh", result, k) for k in range(3)]

    def _functional_call(self, op, bound, writes):
        fop, kind = V.functional_variant(op)
        skip = {a.name for a in writes} if kind == "out" else set()
        args, kwargs = [], {}
        for a in fop._schema.arguments:
            if a.name in skip or a.name not in bound:
                continue
            value = fx.node.map_arg(bound[a.name], self.read)
            if a.kwarg_only:
                kwargs[a.name] = value
            else:
                args.append(value)
        result = self.emit(fop, tuple(args), kwargs)
        if kind == "inplace":
            return [result], result
        n_own = 0 if kind == "out" else len(op._schema.returns)
        if not isinstance(result.meta[META_KEY], tuple):
            return [result], result
        return [self._getitem(result, n_own + j) for j in range(len(writes))], result

    def _fit(self, value: fx.Node, target: fx.Node, op) -> fx.Node:
        """The value as the written tensor holds it: its dtype (eager casts on write) and shape."""
        want, got = target.meta[META_KEY], value.meta[META_KEY]
        if got.shape != want.shape:
            raise UnsupportedGraph(f"{op} would resize its output from {list(want.shape)} to {list(got.shape)}")
        if got.dtype != want.dtype:
            value = self.emit(aten._to_copy.default, (value,), {"dtype": want.dtype})
        return value

    def _write(self, target: fx.Node, value: fx.Node):
        a = self.aliases[target]
        s = a.storage
        if self.read(target) is value:  # e.g. the copy_ that `x[i] *= 2` ends with: nothing changes
            return
        self._check_writable(s)
        if _overlapping(s.root.meta[META_KEY]):  # reached only by writes the schema does not say (batch norm)
            raise UnsupportedGraph(f"in-place write to {s.root.name}, whose elements share memory (expanded)")
        new = value
        for k in range(len(a.chain) - 1, -1, -1):
            parent = self._view_value(s, a.chain[:k])
            self._check_as_strided(s, a.chain[:k + 1])
            up = V.scatter(a.chain[k], parent, parent.meta[META_KEY].shape, new)
            new = up if isinstance(up, fx.Node) else self.emit(*up)
        self._commit(s, new)
        a.value, a.version = value, s.version
        self.views[(id(s), s.version, a.chain)] = value

    def _check_writable(self, s: _Storage):
        """A write to a constant is collected (every one of them, for the error `run` raises at the end)."""
        if s.root.op == "get_attr" and s.root.target not in self.written_constants:
            self.written_constants.append(s.root.target)

    def _commit(self, s: _Storage, new: fx.Node):
        """The storage's root now holds `new`: every other view of it is stale until replayed."""
        s.value, s.version = new, s.version + 1
        for other in self.storages[s.key]:
            if other is not s:
                other.stale = True
        for p in s.root.members if isinstance(s.root, _SharedInputs) else (s.root,):
            if p.op == "placeholder" and p not in self.mutated:
                self.mutated.append(p)

    def _writes_memory(self, target: fx.Node) -> bool:
        """Whether a write to `target` lands on memory several of its elements share, or goes through
        a view step with no inverse: then only running the op on memory gives eager's result."""
        a = self.aliases[target]
        s = a.storage
        root = s.root.meta[META_KEY]
        if _overlapping(root):
            return True
        shape = root.shape
        for k, step in enumerate(a.chain):
            if not V.invertible(step, shape):
                return True
            shape = self._step_shape(s, a.chain[:k + 1])
        return False

    def _step_shape(self, s: _Storage, chain: tuple):
        node = self.views.get((id(s), s.version, chain))
        return (node if node is not None else self._view_value(s, chain)).meta[META_KEY].shape

    def _write_on_copy(self, node: fx.Node, written, target: fx.Node):
        """The op runs as is on a copy of the storage, laid out as eager's root (write_on_copy.py)."""
        op, a = node.target, self.aliases[target]
        s = a.storage
        self.read(target)  # raises on a stale storage (hidden alias)
        self._check_writable(s)
        root = s.root.meta[META_KEY]  # eager's layout of the root: a graph input's, an op result's
        if not broadcast_only_overlap(root.shape, root.strides):
            raise UnsupportedGraph(f"in-place write to {s.root.name}, whose elements share memory other than by "
                                   "broadcasting (an overlapping as_strided layout)")
        if any(step.op is aten.as_strided.default for step in a.chain):
            raise UnsupportedGraph(f"{op} writes through a view with no inverse of an as_strided view "
                                   "(storage offsets Kiln's copy of the root does not keep)")
        if any(r.alias_info is None or not r.alias_info.is_write for r in op._schema.returns):
            raise UnsupportedGraph(f"{op} writes through a view with no inverse and returns fresh results")
        if node.meta[META_KEY].shape != target.meta[META_KEY].shape:
            raise UnsupportedGraph(f"{op} would resize its output from {list(target.meta[META_KEY].shape)}")
        names = [x.name for x in op._schema.arguments]
        where = names.index(written.name) if written.name in names[:len(node.args)] else written.name
        args = tuple(WRITTEN if i == where else x for i, x in enumerate(node.args))
        kwargs = {k: WRITTEN if k == where else v for k, v in node.kwargs.items()}
        p, tensors = plan(op, a.chain, root.shape, root.strides, args, kwargs, lambda x: isinstance(x, fx.Node))
        if not all(t in self.aliases for t in tensors):
            raise UnsupportedGraph(f"{op} writes through a view with no inverse, with a non-tensor graph value")
        meta = TensorMeta(root.shape, root.dtype, p.result_strides, root.device)
        self._commit(s, self.emit(WRITE_ON_COPY, (s.value, [self.read(t) for t in tensors], p.key), meta=meta))
        self._alias_of(node, target)

    def _alias_of(self, old: fx.Node, target: fx.Node):
        """`old` is the very tensor `target` is (an in-place op's result)."""
        a = self.aliases[target]
        self.aliases[old] = _Alias(a.storage, a.chain, a.value, a.version)

    # -- outputs ------------------------------------------------------------------------------
    def _outputs(self, node: fx.Node):
        olds = list(node.args[0])
        infos = list(self.old.meta[OUTPUTS_KEY])
        values = [self.read(o) if isinstance(o, fx.Node) else o for o in olds]
        self.mutations = []
        restrided = self._restrided_inputs()
        for p in self.storage_sets:  # its final layout is its new storage's (set_ below), not a restride
            restrided.pop(self.input_index[p], None)
        for p in self.mutated:
            index = self.input_index[p]
            self.mutations.append(InputMutation(index, len(values), restrided.pop(index, None)))
            values.append(self.read(p))
            infos.append(OutputInfo(p.meta[META_KEY], None, role="mutation"))
        self.mutations += [InputMutation(index, None, layout) for index, layout in restrided.items()]
        def add_base(root):
            values.append(self.read(root))
            return len(values) - 1

        _alias_outputs(olds, infos, self.allocation, self.input_index, add_base)
        self.mutations += self._storage_mutations(olds, infos, values)
        self.graph.output(tuple(values))
        self.infos = infos

    def _restrided_inputs(self) -> dict[int, tuple]:
        """Input index -> (shape, strides, offset) for inputs whose metadata an in-place op changed."""
        out = {}
        for p, index in self.input_index.items():
            final = self.latest[p.meta[IDENTITY_KEY].tensor]
            m, f = final.meta[META_KEY], final.meta[IDENTITY_KEY]
            if (m.shape, m.strides, f.offset) != (p.meta[META_KEY].shape, p.meta[META_KEY].strides, p.meta[IDENTITY_KEY].offset):
                out[index] = (m.shape, m.strides, f.offset)
        return out


def _alias_outputs(olds, infos, allocation, input_index, add_base):
    """ViewOf for every user output sharing eager storage with an input, a constant, or another
    output. Outputs sharing an intermediate's storage view that intermediate (the allocation):
    `add_base(root)` returns it as an extra "base" output unless it is one of the outputs already."""
    groups: dict[int, list[int]] = {}
    for pos, (o, info) in enumerate(zip(olds, infos)):
        if not isinstance(o, fx.Node) or info.same_as is not None or info.input_index is not None:
            continue
        facts = o.meta[IDENTITY_KEY]
        root = allocation[facts.storage]
        if root.op == "placeholder":
            infos[pos] = info.replace(view_of=_view_of("input", input_index[root], info.meta, facts, root))
        elif root.op == "get_attr":
            infos[pos] = info.replace(view_of=_view_of("constant", root.target, info.meta, facts, root))
        else:
            groups.setdefault(facts.storage, []).append(pos)
    for key, positions in groups.items():
        if len({olds[p].meta[IDENTITY_KEY].tensor for p in positions}) < 2:
            continue  # one tensor alone in its storage: a fresh output is indistinguishable
        root = allocation[key]
        rf = root.meta[IDENTITY_KEY]
        if rf.offset != 0:
            raise UnsupportedGraph(f"outputs view {root.name}, which starts at storage offset {rf.offset}")
        base = next((p for p in positions if olds[p].meta[IDENTITY_KEY].tensor == rf.tensor), None)
        if base is None:
            base = add_base(root)
            infos.append(OutputInfo(root.meta[META_KEY], None, role="base"))
        for p in positions:
            if p != base:
                infos[p] = infos[p].replace(view_of=_view_of("output", base, infos[p].meta, olds[p].meta[IDENTITY_KEY],
                                                             root))


class _SharedInputs:
    """The root of a synthetic base: stands for an old node (name, op, meta) in `_Storage.root`."""

    op = "shared_inputs"

    def __init__(self, members: list, meta: TensorMeta, key: int):
        self.members, self.name = members, "memory of " + ", ".join(p.name for p in members)
        self.meta = {META_KEY: meta, IDENTITY_KEY: Identity(-1, key, 0)}


def _written_shared_inputs(gm: fx.GraphModule) -> dict:
    """Old placeholder -> eager storage, for inputs that share a storage (as distinct tensors) that
    some op of the graph writes."""
    written, by_storage = set(), {}
    for node in gm.graph.nodes:
        if node.op == "placeholder" and IDENTITY_KEY in node.meta:
            by_storage.setdefault(node.meta[IDENTITY_KEY].storage, []).append(node)
        elif node.op == "call_function" and isinstance(node.target, OpOverload) and node.target._schema.is_mutable:
            bound = V.bind(node.target, node.args, node.kwargs)
            for a in V.written_args(node.target):
                t = bound.get(a.name)
                if isinstance(t, fx.Node) and IDENTITY_KEY in t.meta:
                    written.add(t.meta[IDENTITY_KEY].storage)
    return {p: key for key, ps in by_storage.items() if key in written and len({p.meta[IDENTITY_KEY].tensor for p in ps}) > 1
            for p in ps}


def _extent(meta) -> int:
    """Elements of storage a layout spans, from its first (0 when it has none)."""
    if any(n == 0 for n in meta.shape):
        return 0
    return 1 + sum((n - 1) * st for n, st in zip(meta.shape, meta.strides))


_BATCH_NORMS = {aten.native_batch_norm.default, aten.cudnn_batch_norm.default, aten.miopen_batch_norm.default}


def _updates_running_stats(node: fx.Node) -> bool:
    if node.target not in _BATCH_NORMS:
        return False
    b = V.bind(node.target, node.args, node.kwargs, defaults=True)
    return bool(b["training"]) and (b["running_mean"] is not None or b["running_var"] is not None)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _row_major(meta) -> bool:
    """Elements in storage order from the offset (contiguous; size-1 dims' strides do not count)."""
    return all(st == want for n, st, want in zip(meta.shape, meta.strides, contiguous_strides(meta.shape)) if n > 1) \
        or 0 in meta.shape


def _overlapping(meta) -> bool:
    """Whether two elements of this layout may share memory (a copy-back into it would be refused)."""
    reach = 0
    for stride, size in sorted((st, n) for st, n in zip(meta.strides, meta.shape) if n > 1):
        if stride <= reach:
            return True
        reach += stride * (size - 1)
    return False


def _view_of(kind, index, meta, facts, root) -> ViewOf:
    base = root.meta[META_KEY]
    if meta.dtype == base.dtype:
        return ViewOf(kind, index, meta.shape, meta.strides, facts.offset - root.meta[IDENTITY_KEY].offset)
    # another dtype (view(dtype)): offsets in the view's elements, from the base's first byte
    start = root.meta[IDENTITY_KEY].offset * base.dtype.itemsize // meta.dtype.itemsize
    return ViewOf(kind, index, meta.shape, meta.strides, facts.offset - start, meta.dtype)


# -- write-only in-place ops: the new value does not depend on the old one --------------------------
def _copy(f: _Functionalizer, target, bound):
    if not isinstance(bound["src"], fx.Node):  # copy_(3.0): the tracer records a wrapped number as itself
        return _fill(f, target, {"value": bound["src"]})
    want, src = target.meta[META_KEY], f.read(bound["src"])
    got = src.meta[META_KEY]
    if got.dtype != want.dtype or got.device != want.device:
        src = f.emit(aten._to_copy.default, (src,), {"dtype": want.dtype, "device": want.device})
    if got.shape != want.shape:
        src = f.emit(aten.expand.default, (src, list(want.shape)))
    return src


def _fill(f: _Functionalizer, target, bound):
    value = bound.get("value", 0)
    if isinstance(value, fx.Node):  # fill_.Tensor: a 0-d tensor value
        return _copy(f, target, {"src": value})
    return f.emit(aten.full_like.default, (f.read(target), value))


_WRITE_ONLY = {aten.copy_.default: _copy, aten.fill_.Scalar: _fill, aten.fill_.Tensor: _fill, aten.zero_.default: _fill}
