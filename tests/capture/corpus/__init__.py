"""The capture feature corpus: small functions run eagerly and compiled, compared exactly.

A `Case` names a function (or a module factory), an input factory, the graph count expected
after each of three calls (first inputs; same shapes with new values; new shapes), whether it
must capture whole with `fullgraph=True`, and its category. `run_case` runs eager and compiled
on deep copies of the same inputs and compares the results and everything the function could
change (arguments, the globals it names, the module), including which objects are the same
object (identity and aliasing), with a counting backend for the graph counts.

Category modules (effects.py, inplace.py, grad_mode.py, guards.py, ...) each define `CASES`;
each has a test_corpus_<category>.py that runs them.
"""
from __future__ import annotations

import copy
import functools
import logging
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from kiln import capture

MISSING = object()  # a global that does not exist


# -- inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class T:
    """A random tensor argument. Variant 2 (the new-shape call) adds 2 to dim 0 when `grows`."""
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    requires_grad: bool = False
    grows: bool = True

    def build(self, variant: int, generator: torch.Generator) -> torch.Tensor:
        shape = list(self.shape)
        if variant == 2 and self.grows and shape:
            shape[0] += 2
        if self.dtype.is_floating_point:
            value = torch.randn(shape, generator=generator, dtype=self.dtype)
        elif self.dtype == torch.bool:
            value = torch.randint(0, 2, shape, generator=generator).bool()
        else:
            value = torch.randint(-5, 6, shape, generator=generator, dtype=self.dtype)
        return value.requires_grad_(self.requires_grad)


def t(*shape: int, **options) -> T:
    return T(tuple(shape), **options)


def _build(spec: Any, variant: int, generator: torch.Generator) -> Any:
    if isinstance(spec, T):
        return spec.build(variant, generator)
    if isinstance(spec, list):
        return [_build(item, variant, generator) for item in spec]
    if isinstance(spec, tuple):
        return tuple(_build(item, variant, generator) for item in spec)
    if isinstance(spec, dict):
        return {key: _build(value, variant, generator) for key, value in spec.items()}
    if isinstance(spec, Fresh):
        return spec.make(variant)
    return spec  # a constant


@dataclass(frozen=True)
class Fresh:
    """An argument made by calling `make(variant)` (objects, modules, per-call constants)."""
    make: Callable[[int], Any]


def args(*specs: Any) -> Callable[[int], tuple]:
    """Input factory from specs: T tensors, lists/tuples/dicts of specs, Fresh, constants."""
    def inputs(variant: int) -> tuple:
        generator = torch.Generator().manual_seed(1000 + variant)
        return tuple(_build(spec, variant, generator) for spec in specs)
    return inputs


# -- cases -----------------------------------------------------------------------------------

@dataclass
class Case:
    fn: Callable | None
    inputs: Callable[[int], tuple]
    graphs: tuple[int, int, int] = (1, 1, 2)   # counting backend's graph count after each call
    fullgraph: bool = True
    category: str = ""
    module: Callable[[], torch.nn.Module] | None = None  # compiled as capture.compile(module())
    globals: tuple[str, ...] = ()   # globals the function changes: compared, then restored
    fallback: str | None = None     # the function must run eagerly, with one warning saying this
    recompiles: tuple[str, ...] = ()  # lines the `recompiles` log must contain
    backend: Any = None             # None: a counting backend; else a backend name (counts unchecked)
    name: str | None = None
    make_fn: Callable[[], Callable] | None = None  # a closure factory: eager and compiled get one each
    breaks: int | None = None       # graph breaks compiled over the three calls (resume functions' included)

    def __post_init__(self) -> None:
        if self.fallback is not None:
            self.fullgraph = False

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        target = self.fn or self.module or self.make_fn
        return getattr(target, "__name__", "case")


class CountingBackend:
    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    @property
    def count(self) -> int:
        return len(self.graphs)

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return gm.forward


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_case(case: Case) -> CountingBackend:
    counter = CountingBackend()
    backend = counter if case.backend is None else case.backend
    if case.module is not None:
        eager = case.module()
        original = copy.deepcopy(eager)
        compiled = capture.compile(original, backend=backend, fullgraph=case.fullgraph)
        fn_globals = type(eager).forward.__globals__
        modules = (original, eager)
    elif case.make_fn is not None:  # separate closures, compared cell by cell below
        eager, original = case.make_fn(), case.make_fn()
        compiled = capture.compile(original, backend=backend, fullgraph=case.fullgraph)
        fn_globals = eager.__globals__
        modules = None
    else:
        eager = case.fn
        compiled = capture.compile(case.fn, backend=backend, fullgraph=case.fullgraph)
        fn_globals = case.fn.__globals__
        modules = None
    breaks_before = len(capture.breaks.BREAKS)
    saved = {name: fn_globals.get(name, MISSING) for name in case.globals}
    eager_world, compiled_world = copy.deepcopy(saved), copy.deepcopy(saved)
    grad_mode = torch.is_grad_enabled()
    log = _Lines()
    recompiles = logging.getLogger("kiln.recompiles")
    recompiles.addHandler(log)
    old_level = recompiles.level
    recompiles.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for variant, expected_graphs in enumerate(case.graphs):
                inputs = case.inputs(variant)
                eager_args, compiled_args = copy.deepcopy(inputs), copy.deepcopy(inputs)
                _install(fn_globals, eager_world)
                expected = _call(eager, eager_args)
                eager_world = _read(fn_globals, saved)
                eager_grad_mode = torch.is_grad_enabled()  # a function may switch it for good
                torch.set_grad_enabled(grad_mode)
                _install(fn_globals, compiled_world)
                actual = _call(compiled, compiled_args)
                compiled_world = _read(fn_globals, saved)
                compiled_grad_mode = torch.is_grad_enabled()
                torch.set_grad_enabled(grad_mode)
                compiled_state = (actual, compiled_args, compiled_world, modules and modules[0], compiled_grad_mode,
                                  _cells(original) if case.make_fn else None)
                eager_state = (expected, eager_args, eager_world, modules and modules[1], eager_grad_mode,
                               _cells(eager) if case.make_fn else None)
                Comparer(f"call {variant}").same(compiled_state, eager_state,
                                                 "(output, args, globals, module, grad mode, closure)")
                if case.backend is None:
                    assert counter.count == expected_graphs, (
                        f"call {variant}: {counter.count} graphs, expected {expected_graphs}")
    finally:
        torch.set_grad_enabled(grad_mode)
        recompiles.removeHandler(log)
        recompiles.setLevel(old_level)
        _install(fn_globals, saved)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, capture.FallbackWarning)]
    if case.fallback is None:
        assert not fallbacks, fallbacks
    else:
        assert len(fallbacks) == 1 and case.fallback in fallbacks[0], fallbacks
    if case.breaks is not None:
        made = capture.breaks.BREAKS[breaks_before:]
        assert len(made) == case.breaks, f"{len(made)} graph breaks, expected {case.breaks}: {[str(b) for b in made]}"
    text = "\n".join(log.lines)
    for line in case.recompiles:
        assert line in text, f"{line!r} not in recompiles log:\n{text}"
    return counter


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error

    def __repr__(self) -> str:
        return f"raised {type(self.error).__name__}: {self.error}"


def _call(fn, arguments: tuple) -> Any:
    try:
        return fn(*arguments)
    except Exception as error:  # compared like a result: same type and message
        return _Raised(error)


def _cells(fn) -> list:
    return [cell.cell_contents for cell in fn.__closure__ or ()]


def _install(fn_globals: dict, world: dict) -> None:
    for name, value in world.items():
        if value is MISSING:
            fn_globals.pop(name, None)
        else:
            fn_globals[name] = value


def _read(fn_globals: dict, names) -> dict:
    return {name: fn_globals.get(name, MISSING) for name in names}


# -- comparison ------------------------------------------------------------------------------

_UNTRACKED = (int, float, bool, str, complex, bytes, type(None), torch.dtype, torch.device, torch.Size,
              tuple, types.FunctionType, types.BuiltinFunctionType, type)


@dataclass
class Comparer:
    """Compares compiled-side values with eager-side ones, recursively. Mutable objects and
    tensors are tracked by identity in parallel: an object seen twice on one side must be
    seen at the same place on the other side (same identity and aliasing as eager)."""
    where: str
    seen_eager: dict[int, str] = field(default_factory=dict)
    seen_compiled: dict[int, str] = field(default_factory=dict)
    alive: list = field(default_factory=list)

    def same(self, actual: Any, expected: Any, path: str) -> None:
        if isinstance(expected, _Raised) or isinstance(actual, _Raised):
            assert isinstance(actual, _Raised) and isinstance(expected, _Raised), (
                f"{self.where} {path}: eager gave {expected!r}, compiled gave {actual!r}")
            assert type(actual.error) is type(expected.error) and str(actual.error) == str(expected.error)
            return
        if not isinstance(expected, _UNTRACKED):
            first_eager = self.seen_eager.get(id(expected))
            first_compiled = self.seen_compiled.get(id(actual))
            assert first_eager == first_compiled, (
                f"{self.where} {path}: identity differs from eager (eager object first seen at "
                f"{first_eager}, compiled object at {first_compiled})")
            if first_eager is not None:
                return
            self.seen_eager[id(expected)] = self.seen_compiled[id(actual)] = path
            self.alive += [actual, expected]
        assert type(actual) is type(expected), f"{self.where} {path}: type {type(actual)} != {type(expected)}"
        if isinstance(expected, torch.Tensor):
            self._tensor(actual, expected, path)
        elif isinstance(expected, (list, tuple)):
            assert len(actual) == len(expected), f"{self.where} {path}: length {len(actual)} != {len(expected)}"
            for index, (a, e) in enumerate(zip(actual, expected)):
                self.same(a, e, f"{path}[{index}]")
        elif isinstance(expected, dict):
            assert list(actual) == list(expected), f"{self.where} {path}: keys {list(actual)} != {list(expected)}"
            for key in expected:
                self.same(actual[key], expected[key], f"{path}[{key!r}]")
        elif isinstance(expected, (set, frozenset)):
            assert actual == expected, f"{self.where} {path}: {actual} != {expected}"
        elif isinstance(expected, types.MethodType):
            assert actual.__func__ is expected.__func__, f"{self.where} {path}: another function"
            self.same(actual.__self__, expected.__self__, f"{path}.__self__")
        elif isinstance(expected, functools.partial):
            assert actual.func is expected.func, f"{self.where} {path}: partial of another function"
            self.same((actual.args, actual.keywords), (expected.args, expected.keywords), f"{path} (partial)")
        elif hasattr(expected, "__dict__") and not isinstance(expected, types.ModuleType):
            self.same(vars(actual), vars(expected), f"{path}.__dict__")
        elif hasattr(type(expected), "__slots__"):
            names = [name for klass in type(expected).__mro__ for name in getattr(klass, "__slots__", ())]
            self.same([getattr(actual, name) for name in names], [getattr(expected, name) for name in names],
                      f"{path} (slots)")
        else:
            assert actual == expected, f"{self.where} {path}: {actual!r} != {expected!r}"

    def _tensor(self, actual: torch.Tensor, expected: torch.Tensor, path: str) -> None:
        where = f"{self.where} {path}"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.requires_grad == expected.requires_grad, (
            f"{where}: requires_grad {actual.requires_grad} != {expected.requires_grad}")
        assert actual.stride() == expected.stride(), f"{where}: stride {actual.stride()} != {expected.stride()}"
        torch.testing.assert_close(actual.detach(), expected.detach(), equal_nan=True, msg=lambda m: f"{where}: {m}")
