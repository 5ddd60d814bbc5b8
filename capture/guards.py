"""Guards: the conditions under which a compiled entry may be reused.

A `Guard` is data (source, kind, expected value). A `GuardSet` turns its
guards into one generated Python function (source text, exec'd once) that
checks them all quickly, and keeps a slow path (`explain_failure`) that
names the first failing guard in words, for the `recompiles` log.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.fx.experimental.symbolic_shapes import SYMPY_INTERP

from .sources import AttrSource, Frame, GetItemSource, ModuleEntrySource, Source


@dataclass(frozen=True)
class GuardKind:
    """How to check one kind of guard and how to explain its failure.

    check: a Python expression template; {v} is the guarded value's expression,
    {e} the name bound to the expected value in the guard function's namespace,
    {other} the expression of an expected source; or a function (guard, read) -> expression,
    where read(source) gives a source's expression.
    explain: (guard, actual value) -> words, used only on failure.
    """
    name: str
    check: str | Callable[["Guard"], str]
    explain: Callable[["Guard", Any], str]


def _what(guard: "Guard") -> str:
    return f"{guard.noun} {guard.source.name()!r}" if guard.source is not None else guard.noun


def _mismatch(prop: str, actual_of: Callable[[Any], Any]) -> Callable[["Guard", Any], str]:
    def explain(guard: "Guard", value: Any) -> str:
        return f"{_what(guard)} {prop} mismatch: expected {guard.expected!r}, got {actual_of(value)!r}"
    return explain


def _explain_sequence(prop: str, actual_of: Callable[[Any], tuple]) -> Callable[["Guard", Any], str]:
    def explain(guard: "Guard", value: Any) -> str:
        actual = tuple(actual_of(value))
        for dim, (want, got) in enumerate(zip(guard.expected, actual)):
            if want is not None and want != got:  # (None: a symbolic dim, checked by SHAPE_EXPR)
                return f"{_what(guard)} {prop} mismatch at dim {dim}: expected {want}, got {got}"
        return f"{_what(guard)} {prop} mismatch: expected {guard.expected}, got {actual}"
    return explain


def _check_static_entries(method: str) -> Callable[["Guard", Any], str]:
    """SIZE/STRIDE of a tensor with symbolic entries (None): only the static ones are checked here;
    the ShapeEnv's guards (SHAPE_EXPR) cover the symbolic ones."""
    def check(guard: "Guard", read) -> str:
        value = read(guard.source)
        parts = [f"{value}.{method}({dim}) == {want}" for dim, want in enumerate(guard.expected) if want is not None]
        return " and ".join(parts) or "True"
    return check


def _explain_alias(same: bool) -> Callable[["Guard", Any], str]:
    def explain(guard: "Guard", value: Any) -> str:
        relation = "no longer the same object as" if same else "now the same object as"
        return f"{_what(guard)} is {relation} {guard.expected.name()!r}"
    return explain


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _distinct_objects(values: tuple) -> bool:
    return len({id(value) for value in values}) == len(values)


def _storages_apart(mutated: tuple, others: tuple) -> bool:
    """Each mutated tensor's memory is its own: no two share it and no other input does."""
    pointers = {_storage(tensor) for tensor in mutated}
    return len(pointers) == len(mutated) and pointers.isdisjoint(_storage(tensor) for tensor in others)


SMALL_GROUP = 4  # up to this many objects, a few `is not`s are faster than building a set per call


def _check_distinct_objects(guard: "Guard", read) -> str:
    exprs = [read(guard.source), *(read(source) for source in guard.expected)]
    if len(exprs) <= SMALL_GROUP:
        return " and ".join(f"{a} is not {b}" for a, b in itertools.combinations(exprs, 2))
    return f"distinct_objects(({', '.join(exprs)},))"


def _check_storages_apart(guard: "Guard", read) -> str:
    mutated = [read(guard.source), *(read(source) for source in guard.expected[0])]
    rest = "".join(f"{read(source)}, " for source in guard.expected[1])
    return f"storages_apart(({', '.join(mutated)},), ({rest}))"


def _objects_apart(mutated: tuple, others: tuple) -> bool:
    """Each mutated object is reached by no other name: no two are one, none is another input."""
    ids = {id(value) for value in mutated}
    return len(ids) == len(mutated) and ids.isdisjoint(id(value) for value in others)


def _check_objects_apart(guard: "Guard", read) -> str:
    mutated = [read(guard.source), *(read(source) for source in guard.expected[0])]
    rest = "".join(f"{read(source)}, " for source in guard.expected[1])
    return f"objects_apart(({', '.join(mutated)},), ({rest}))"


def _explain_apart(same: Callable[[Any, Any], bool], relation: str) -> Callable[["Guard", tuple], str]:
    """For STORAGES_APART / OBJECTS_APART: name the first mutated value now shared."""
    def explain(guard: "Guard", values: tuple) -> str:
        mutated_sources, other_sources = (guard.source, *guard.expected[0]), guard.expected[1]
        mutated, others = values[:len(mutated_sources)], values[len(mutated_sources):]
        for i, value in enumerate(mutated):
            for source, other in zip(mutated_sources[i + 1:] + other_sources, mutated[i + 1:] + others):
                if same(other, value):
                    return f"{guard.noun} {mutated_sources[i].name()!r} {relation} {source.name()!r}"
        return f"guard failed: {guard!r}"
    return explain


def _explain_distinct_objects(guard: "Guard", values: tuple) -> str:
    sources = (guard.source, *guard.expected)
    for i, value in enumerate(values):
        for j in range(i + 1, len(values)):  # slow path only: runs once, on a failure
            if values[j] is value:
                return f"{guard.noun} {sources[i].name()!r} is now the same object as {sources[j].name()!r}"
    return f"guard failed: {guard!r}"


GUARD_KINDS: dict[str, GuardKind] = {kind.name: kind for kind in (
    GuardKind("TYPE_MATCH", "type({v}) is {e}", _mismatch("type", type)),
    GuardKind("ID_MATCH", "{v} is {e}",
              lambda g, v: f"{_what(g)} was rebound: expected the object {g.expected!r}, got {v!r}"),
    GuardKind("CONSTANT_MATCH", "type({v}) is type({e}) and {v} == {e}", _mismatch("value", lambda v: v)),
    GuardKind("LENGTH", "len({v}) == {e}", _mismatch("length", len)),
    GuardKind("HAS_KEY", "{e} in {v}", lambda g, v: f"{_what(g)} {g.source.name()} has no key {g.expected!r}"),
    GuardKind("KEYS", "tuple({v}) == {e}", _mismatch("keys", tuple)),   # a dict's keys, in order
    GuardKind("NOT_IN", "{e} not in {v}",                                # a name absent from a __dict__
              lambda g, v: f"{_what(g)} now has {g.expected!r}"),
    GuardKind("NO_ATTR", "not hasattr({v}, {e})", lambda g, v: f"{_what(g)} now has attribute {g.expected!r}"),
    GuardKind("NDIM", "{v}.dim() == {e}", _mismatch("ndim", lambda v: v.dim())),
    GuardKind("DTYPE", "{v}.dtype == {e}", _mismatch("dtype", lambda v: v.dtype)),
    GuardKind("DEVICE", "{v}.device == {e}", _mismatch("device", lambda v: v.device)),
    GuardKind("LAYOUT", "{v}.layout == {e}", _mismatch("layout", lambda v: v.layout)),
    GuardKind("REQUIRES_GRAD", "{v}.requires_grad == {e}", _mismatch("requires_grad", lambda v: v.requires_grad)),
    GuardKind("SIZE", "{v}.shape == {e}", _explain_sequence("size", lambda v: v.shape)),
    GuardKind("STRIDE", "{v}.stride() == {e}", _explain_sequence("stride", lambda v: v.stride())),
    GuardKind("SOME_SIZES", _check_static_entries("size"), _explain_sequence("size", lambda v: v.shape)),
    GuardKind("SOME_STRIDES", _check_static_entries("stride"), _explain_sequence("stride", lambda v: v.stride())),
    # One relation the ShapeEnv recorded between symbolic sizes and ints, as a Python expression
    # over L, G, B, C (`2 <= L['x'].size()[0]`, `L['y'].size()[0] == L['x'].size()[0]`).
    GuardKind("SHAPE_EXPR", lambda guard, read: guard.expected, lambda g, v: f"size guard failed: {g.expected}"),
    GuardKind("SAME_OBJECT", "{v} is {other}", _explain_alias(True)),
    GuardKind("DIFFERENT_OBJECT", "{v} is not {other}", _explain_alias(False)),
    # One guard over many sources (linear, where pairwise guards would be quadratic):
    # expected is the tuple of the other sources (STORAGES_APART: (other mutated, the rest)).
    GuardKind("DISTINCT_OBJECTS", _check_distinct_objects, _explain_distinct_objects),
    GuardKind("STORAGES_APART", _check_storages_apart,
              _explain_apart(lambda a, b: _storage(a) == _storage(b), "now shares memory with")),
    GuardKind("OBJECTS_APART", _check_objects_apart, _explain_apart(lambda a, b: a is b, "is now the same object as")),
    GuardKind("SAME_STORAGE", "{v}.untyped_storage().data_ptr() == {other}.untyped_storage().data_ptr()",
              lambda g, v: f"{_what(g)} no longer shares memory with {g.expected.name()!r}"),
    GuardKind("DIFFERENT_STORAGE", "{v}.untyped_storage().data_ptr() != {other}.untyped_storage().data_ptr()",
              lambda g, v: f"{_what(g)} now shares memory with {g.expected.name()!r}"),
    # A torch query of global state (fastpath on, autocast, default dtype...) read at trace time:
    # expected is (function, args, kwargs, value), the call is made again.
    GuardKind("GLOBAL_QUERY", "(lambda f, a, k, r: type(q := f(*a, **dict(k))) is type(r) and q == r)(*{e})",
              lambda g, v: f"{getattr(g.expected[0], '__qualname__', g.expected[0])}() changed: "
                           f"expected {g.expected[3]!r}"),
    GuardKind("GRAD_MODE", "is_grad_enabled() is {e}",
              lambda g, v: f"grad mode changed: expected {g.expected}, got {torch.is_grad_enabled()}"),
)}


@dataclass(frozen=True)
class Guard:
    source: Source | None   # None for global-state guards (grad mode)
    kind: str
    expected: Any
    noun: str = "value"     # "tensor", "global", ... for messages

    def __repr__(self) -> str:
        expected = _expr(self.expected)
        subject = self.source.expr() if self.source is not None else (
            "torch.is_grad_enabled()" if self.kind == "GRAD_MODE" else "")
        return f"{self.kind:<16} {subject} {expected}"

    def key(self) -> tuple:
        if self.kind in MANY_PER_SOURCE:  # one per (source, other source or name)
            return (self.source, self.kind, self.expected)
        return (self.source, self.kind)


def _expr(expected: Any) -> str:
    if isinstance(expected, Source):
        return expected.expr()
    if isinstance(expected, tuple) and expected and all(isinstance(item, (Source, tuple)) for item in expected):
        return "(" + ", ".join(map(_expr, expected)) + ",)"
    return repr(expected)


def _sources(expected: Any) -> tuple[Source, ...]:
    """Every source a guard's expected value names, flattened (group guards read them all)."""
    if isinstance(expected, Source):
        return (expected,)
    if isinstance(expected, tuple) and all(isinstance(item, (Source, tuple)) for item in expected):
        return tuple(source for item in expected for source in _sources(item))
    return ()


MANY_PER_SOURCE = frozenset({"SAME_OBJECT", "DIFFERENT_OBJECT", "NOT_IN", "NO_ATTR", "HAS_KEY", "GLOBAL_QUERY",
                             "SAME_STORAGE", "DIFFERENT_STORAGE", "DISTINCT_OBJECTS", "STORAGES_APART", "OBJECTS_APART",
                             "SHAPE_EXPR"})


GROUP_KINDS = frozenset({"DISTINCT_OBJECTS", "STORAGES_APART", "OBJECTS_APART"})


def tensor_guards(source: Source, tensor: torch.Tensor, fake: torch.Tensor | None = None) -> list[Guard]:
    """Guards for a tensor input, cheapest and most explanatory first. Where `fake` (its fake
    tensor) has symbolic sizes or strides, only the static entries are checked here."""
    sizes, strides = tuple(tensor.shape), tuple(tensor.stride())
    size_kind, stride_kind = "SIZE", "STRIDE"
    if fake is not None and _symbolic(fake.shape):
        size_kind, sizes = "SOME_SIZES", _static_entries(fake.shape)
    if fake is not None and _symbolic(fake.stride()):
        stride_kind, strides = "SOME_STRIDES", _static_entries(fake.stride())
    meta = [("TYPE_MATCH", type(tensor)), ("NDIM", tensor.dim()), ("DTYPE", tensor.dtype),
            ("DEVICE", tensor.device), ("REQUIRES_GRAD", tensor.requires_grad),
            (size_kind, sizes), (stride_kind, strides)]
    return [Guard(source, kind, expected, noun="tensor") for kind, expected in meta]


def _symbolic(values) -> bool:
    return any(isinstance(value, torch.SymInt) for value in values)


def _static_entries(values) -> tuple:
    return tuple(None if isinstance(value, torch.SymInt) else value for value in values)


class SharedReads:
    """Expressions for guard sources in which every value more than one guard reads (a module
    deep in a model, read by dozens of guards) is fetched once, into a local, just before the first
    guard that needs it: linear in the number of guards, not in guards times attribute depth.
    A read that raises fails the check, as the full expression would have at its guard."""

    def __init__(self, reads, lines: list[str], indent: str = "        "):
        """reads: (source, expected) pairs; an expected value that is a source or a tuple of
        sources is read too."""
        counts: dict[Source, int] = {}
        for first, expected in reads:
            for source in (first, *_sources(expected)):
                while source is not None:
                    counts[source] = counts.get(source, 0) + 1
                    source = getattr(source, "base", None) if isinstance(source, (AttrSource, GetItemSource)) else None
        # roots (L['x'], G['name']) are one dict lookup: only attribute and item reads are shared
        self.shared = {source for source, n in counts.items() if n > 1 and isinstance(source, (AttrSource, GetItemSource))}
        self.names: dict[Source, str] = {}
        self.lines, self.indent = lines, indent

    def __call__(self, source: Source) -> str:
        if source in self.names:
            return self.names[source]
        if isinstance(source, ModuleEntrySource):
            text = f"{self(source.base)}.{source.table}[{source.attr!r}]"
        elif isinstance(source, AttrSource):
            text = f"{self(source.base)}.{source.attr}"
        elif isinstance(source, GetItemSource):
            text = f"{self(source.base)}[{source.index!r}]"
        else:
            text = source.expr()
        if source not in self.shared:
            return text
        name = self.names[source] = f"s{len(self.names)}"
        self.lines.append(f"{self.indent}{name} = {text}  # {source.name()}")
        return name


class GuardSet:
    """An ordered, de-duplicated set of guards compiled into one check function."""

    def __init__(self) -> None:
        self._guards: dict[tuple, Guard] = {}
        self._check: Callable[[Frame], bool] | None = None
        self.source_text = ""

    def add(self, guard: Guard) -> None:
        assert self._check is None, "guards added after the GuardSet was compiled"
        self._guards.setdefault(guard.key(), guard)

    def extend(self, guards) -> None:
        for guard in guards:
            self.add(guard)

    @property
    def guards(self) -> list[Guard]:
        return list(self._guards.values())

    def __len__(self) -> int:
        return len(self._guards)

    def __repr__(self) -> str:
        return "\n".join(repr(g) for g in self.guards)

    def compile(self) -> None:
        """Generate and exec the fast check function."""
        namespace: dict[str, Any] = {**SYMPY_INTERP, "is_grad_enabled": torch.is_grad_enabled, "distinct_objects": _distinct_objects,
                                     "storages_apart": _storages_apart, "objects_apart": _objects_apart}
        lines = ["def check_guards(L, G, B, C):", "    try:"]
        read = SharedReads([(g.source, g.expected) for g in self.guards], lines)
        for number, guard in enumerate(self.guards):
            expected_name = f"expected_{number}"
            namespace[expected_name] = guard.expected
            check = GUARD_KINDS[guard.kind].check
            condition = check(guard, read) if callable(check) else check.format(
                v=read(guard.source) if guard.source is not None else "None",
                e=expected_name,
                other=read(guard.expected) if isinstance(guard.expected, Source) else "None")
            lines.append(f"        if not ({condition}):  # {guard.kind}")
            lines.append("            return False")
        lines += ["    except Exception:", "        return False", "    return True"]
        self.source_text = "\n".join(lines)
        exec(compile(self.source_text, "<kiln guards>", "exec"), namespace)
        self._check = namespace["check_guards"]

    def check(self, frame: Frame) -> bool:
        if self._check is None:
            self.compile()
        return self._check(frame.L, frame.G, frame.B, frame.C)

    def explain_failure(self, frame: Frame) -> str | None:
        """Slow path: words for the first failing guard, or None if all pass."""
        for guard in self.guards:
            single = GuardSet()
            single.add(guard)
            if single.check(frame):
                continue
            if guard.source is None:
                return GUARD_KINDS[guard.kind].explain(guard, None)
            try:
                value = frame.fetch(guard.source)
            except Exception as error:  # the value no longer exists (deleted global, ...)
                return f"{_what(guard)} could not be read: {type(error).__name__}: {error}"
            if guard.kind in GROUP_KINDS:  # explained from every value it compares
                value = (value, *(frame.fetch(source) for source in _sources(guard.expected)))
            try:
                return GUARD_KINDS[guard.kind].explain(guard, value)
            except Exception:
                return f"guard failed: {guard!r}"
        return None
