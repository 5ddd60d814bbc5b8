"""Small cases for what real models' forwards need (each found capturing a model of
tests/capture/test_models.py): function attributes, imports inside functions, tensor layout
attributes, hasattr on values capture cannot trace. Each compares with eager and counts graphs."""
import functools

import pytest
import torch

from kiln import capture


def _run(fn, *args, backend, fullgraph=True):
    compiled = capture.compile(fn, backend=backend, fullgraph=fullgraph)
    got = compiled(*args)
    torch.testing.assert_close(got, fn(*args))
    return got


# -- function attributes ---------------------------------------------------------------------

def _scaled(x, scale=2.0, *, shift=1.0):
    return x * scale + shift


def _decorated(func):
    @functools.wraps(func)
    def wrapper(x):
        names = func.__code__.co_varnames[:func.__code__.co_argcount]
        scale = func.__defaults__[0] if "scale" in names else 1.0
        shift = func.__kwdefaults__["shift"]
        return func(x, scale, shift=shift) + len(func.__name__) + len(func.__qualname__)
    return wrapper


def test_function_attributes_read_by_a_decorator(counter, no_warnings):
    fn = _decorated(_scaled)
    _run(fn, torch.randn(4), backend=counter)
    _run(fn, torch.randn(4), backend=counter)
    assert counter.count == 1


def test_function_attributes_are_guarded(counter, no_warnings):
    def target(x, scale=3.0):
        return x * scale

    def caller(x):
        return target(x, target.__defaults__[0]) + len(target.__name__)

    x = torch.randn(3)
    _run(caller, x, backend=counter)
    target.__defaults__ = (5.0,)
    _run(caller, x, backend=counter)
    target.__name__ = "a_longer_name"
    _run(caller, x, backend=counter)
    target.__code__ = (lambda x, scale=0.0: x - scale).__code__
    _run(caller, x, backend=counter)
    assert counter.count == 4


def test_wrapped_and_function_dict(counter, no_warnings):
    @functools.wraps(_scaled)
    def wrapper(x):
        return wrapper.__wrapped__(x) * wrapper.factor

    wrapper.factor = 3.0
    _run(wrapper, torch.randn(4), backend=counter)
    wrapper.factor = 4.0  # an attribute in the function's __dict__ is guarded by value
    _run(wrapper, torch.randn(4), backend=counter)
    assert counter.count == 2


def test_nested_function_attributes(counter, no_warnings):
    def fn(x):
        def inner(y, k=2.0, *, j=3.0):
            return y * k + j
        return inner(x) + inner.__defaults__[0] + inner.__kwdefaults__["j"] + inner.__code__.co_argcount

    _run(fn, torch.randn(4), backend=counter)
    assert counter.count == 1


def test_missing_function_attribute_raises_as_eager():
    def fn(x):
        return x + len(_scaled.__wrapped__.__name__)

    with pytest.raises(AttributeError):
        capture.compile(fn, backend="eager")(torch.randn(2))


# -- imports inside functions ----------------------------------------------------------------

def test_imports_inside_the_function(counter, no_warnings):
    def fn(x):
        import torch.nn.functional as F
        import math
        from torch import nn
        from math import sqrt
        return F.relu(x) * math.pi + sqrt(4.0) + nn.functional.gelu(x)

    _run(fn, torch.randn(8), backend=counter)
    _run(fn, torch.randn(8), backend=counter)
    assert counter.count == 1


def test_import_of_a_module_not_yet_imported_is_unsupported():
    def fn(x):
        import kiln_not_a_real_module  # noqa: F401
        return x + 1

    with pytest.raises(capture.Unsupported, match="not imported yet"):
        capture.compile(fn, backend="eager", fullgraph=True)(torch.randn(2))


# -- tensor layout attributes ----------------------------------------------------------------

def test_tensor_layout_attributes(counter, no_warnings):
    def fn(x):
        y = x * 2
        flags = (x.is_nested, x.is_sparse, x.is_quantized, x.is_mkldnn, y.is_nested, y.is_sparse)
        if any(flags) or x.layout != torch.strided:
            return y - 1
        return y + 1

    _run(fn, torch.randn(3, 3), backend=counter)
    _run(fn, torch.randn(3, 3), backend=counter)
    assert counter.count == 1


def test_layout_is_guarded_against_a_sparse_input_with_the_same_strides():
    # A sparse COO tensor has strides (0, 0), as an expanded dense one does: SIZE and STRIDE match.
    def fn(x):
        return torch.ones(3) if x.is_sparse else torch.zeros(3)

    compiled = capture.compile(fn, backend="eager")
    dense = torch.ones(1, 1).expand(3, 3)
    sparse = torch.eye(3).to_sparse()
    assert sparse.stride() == dense.stride()
    torch.testing.assert_close(compiled(dense), fn(dense))
    torch.testing.assert_close(compiled(sparse), fn(sparse))


# -- objects capture cannot trace ------------------------------------------------------------

class _Config:
    """Like transformers' PretrainedConfig: a custom __getattribute__, so capture cannot trace it."""

    def __init__(self):
        self.present = 2.0

    def __getattribute__(self, name):
        return super().__getattribute__(name)


def test_getattr_with_default_on_an_untraceable_object_matches_eager():
    # hasattr() cannot be answered for it: a graph break there, never a guess.
    config = _Config()

    def fn(x):
        missing = getattr(config, "absent", None)
        return x * (3.0 if missing is None else missing)

    x = torch.randn(4)
    torch.testing.assert_close(capture.compile(fn, backend="eager")(x), fn(x))
    capture.reset()
    with pytest.raises(capture.Unsupported, match="hasattr"):
        capture.compile(fn, backend="eager", fullgraph=True)(x)


# -- transformers' configs (custom, pure __getattribute__) -----------------------------------

def test_transformers_config_attributes_are_read_and_guarded(counter, no_warnings):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2)

    def fn(x):
        scale = config.n_embd if hasattr(config, "n_embd") else 1  # hidden_size maps to n_embd
        extra = getattr(config, "not_an_attribute", None)
        return x * scale + config.hidden_size + (0 if extra is None else extra)

    x = torch.randn(3)
    _run(fn, x, backend=counter)
    _run(fn, x, backend=counter)
    assert counter.count == 1
    config.n_embd = 64  # guarded by value: recompiles
    _run(fn, x, backend=counter)
    config.not_an_attribute = 5  # guarded absent: recompiles
    _run(fn, x, backend=counter)
    assert counter.count == 3


def test_enum_members_and_module_class(counter, no_warnings):
    import enum

    class Mode(str, enum.Enum):
        FAST = "fast"
        SLOW = "slow"

    module = torch.nn.Linear(3, 3)

    def fn(x, mode):
        name = module.__class__.__name__
        return module(x) * (2 if mode == Mode.FAST else 3) + len(name)

    x = torch.randn(2, 3)
    _run(fn, x, Mode.FAST, backend=counter)
    _run(fn, x, Mode.SLOW, backend=counter)
    assert counter.count == 2


# -- module tree walks -----------------------------------------------------------------------

def test_module_tree_methods(counter, no_warnings):
    shared = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(shared, torch.nn.ReLU(), torch.nn.Sequential(shared, torch.nn.Tanh()))

    def fn(x):
        hooks = sum(len(getattr(m, "_forward_hooks", {})) for m in model.modules())
        names = [name for name, _ in model.named_modules()] + [name for name, _ in model.named_children()]
        for child in model.children():
            x = child(x)
        return x * (hooks + 1) + len(names)

    x = torch.randn(2, 4)
    _run(fn, x, backend=counter)
    _run(fn, x, backend=counter)
    assert counter.count == 1
    model[1].register_forward_hook(lambda *args: None)  # a hook: the module's hook table changed
    _run(fn, x, backend=counter, fullgraph=False)
    model.append(torch.nn.Sigmoid())  # a new submodule: the tree's keys are guarded
    _run(fn, x, backend=counter, fullgraph=False)
    assert counter.count >= 2


# -- torch queries of global state -----------------------------------------------------------

def test_torch_global_state_queries_are_guarded(counter, no_warnings):
    def fn(x):
        if torch.backends.mha.get_fastpath_enabled():
            return x + 1
        return x - 1

    x = torch.randn(3)
    try:
        _run(fn, x, backend=counter)
        torch.backends.mha.set_fastpath_enabled(False)
        _run(fn, x, backend=counter)
        assert counter.count == 2
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_default_dtype_query_is_guarded(counter, no_warnings):
    def fn(x):
        return x.to(torch.get_default_dtype())

    x = torch.randn(3, dtype=torch.float64)
    saved = torch.get_default_dtype()
    try:
        _run(fn, x, backend=counter)
        torch.set_default_dtype(torch.float64)
        _run(fn, x, backend=counter)
        assert counter.count == 2
    finally:
        torch.set_default_dtype(saved)


def test_hasattr_on_a_function_is_guarded(counter, no_warnings):
    def target(x):
        return x + 1

    def fn(x):
        inner = target.__wrapped__ if hasattr(target, "__wrapped__") else target
        return inner(x) * 2

    x = torch.randn(3)
    _run(fn, x, backend=counter)
    target.__wrapped__ = lambda x: x - 1  # now present: recompiles and calls it
    _run(fn, x, backend=counter)
    assert counter.count == 2


def test_is_compiling_is_true_in_traced_code(counter, no_warnings):
    """torch.compiler.is_compiling() answers as under torch.compile: true in the traced code (libraries
    take their compile paths: transformers skips its ContextVar bookkeeping), false when run eagerly."""
    def f(x):
        if torch.compiler.is_compiling():
            return x + 1
        return x - 1

    x = torch.randn(3)
    expected = torch.compile(f, backend="eager")(x)
    torch.testing.assert_close(expected, x + 1)
    got = capture.compile(f, backend=counter, fullgraph=True)(x)
    torch.testing.assert_close(got, expected)
    assert not torch.compiler.is_compiling() and f(x).equal(x - 1)
