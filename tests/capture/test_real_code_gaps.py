"""Small cases for constructs transformers' model code uses (each found capturing a tiny GPT-2
or LLaMA with Kiln's own capture): zero-argument super() in a frame that graph-breaks, Mapping
and dict subclasses with Python methods, ContextVar reads. Each compares with eager and counts
graphs."""
import warnings

import pytest
import torch

from kiln import capture


@capture.disable
def _opaque(x):
    """Untraceable on purpose: a graph break."""
    return x * 2


def _run(fn, *args, backend, fullgraph=False):
    compiled = capture.compile(fn, backend=backend, fullgraph=fullgraph)
    got = compiled(*args)
    torch.testing.assert_close(got, fn(*args))
    return compiled


# -- zero-argument super() in a frame that graph-breaks (3.11 reads self from the frame) ------

class _Base(torch.nn.Module):
    def forward(self, x):
        return x + 1

    def scale(self, x):
        return x * 3


class _BreaksThenSuper(_Base):
    def forward(self, x):
        y = _opaque(x.sin())
        return super().forward(y) + super().scale(y)


class _SuperBeforeAndAfter(_Base):
    def forward(self, x):
        y = super().forward(x)
        z = _opaque(y)
        other = self  # super() reads the first argument, not a name that is live
        return super().scale(z) + other.scale(y)


class _SuperInLoopBreak(_Base):
    def forward(self, x):
        x = x.cos()
        for _ in range(2):
            x = super().forward(_opaque(x))
        return x


@pytest.mark.parametrize("cls", [_BreaksThenSuper, _SuperBeforeAndAfter, _SuperInLoopBreak],
                         ids=lambda cls: cls.__name__)
def test_zero_argument_super_after_a_graph_break(cls, counter, no_warnings):
    module = cls()
    compiled = _run(module, torch.randn(4), backend=counter)
    count = counter.count
    assert count >= 1 + (cls is not _SuperInLoopBreak)  # before the break, and resumed (not in a loop)
    x = torch.randn(4)
    torch.testing.assert_close(compiled(x), module(x))
    assert counter.count == count


class _Holder:
    def __init__(self, value):
        self.value = value

    def get(self, x):
        return x + self.value


class _SubHolder(_Holder):
    def get(self, x):
        y = _opaque(x + 1)
        return super().get(y) * 2


def test_zero_argument_super_in_a_plain_method_frame(counter, no_warnings):
    holder = _SubHolder(3.0)
    _run(_SubHolder.get, holder, torch.randn(4), backend=counter)
    assert counter.count == 2


def test_zero_argument_super_in_a_bound_method(counter):
    # The bound method's frame gets `self` from the method, not from the call's arguments.
    holder = _SubHolder(2.0)
    x = torch.randn(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capture.FallbackWarning)
        compiled = capture.compile(holder.get, backend=counter)
        torch.testing.assert_close(compiled(x), holder.get(x))
        torch.testing.assert_close(compiled(x), holder.get(x))


# -- Mapping subclasses with Python methods (transformers' AttentionInterface) ----------------

import collections.abc  # noqa: E402


def _double(x):
    return x * 2


def _halve(x):
    return x / 2


class _Registry(collections.abc.MutableMapping):
    """Like transformers' GeneralInterface: a class-wide mapping plus a local one."""
    _global_mapping = {"double": _double}

    def __init__(self):
        self._local_mapping = {}

    def __getitem__(self, key):
        if key in self._local_mapping:
            return self._local_mapping[key]
        return self._global_mapping[key]

    def __setitem__(self, key, value):
        self._local_mapping.update({key: value})

    def __delitem__(self, key):
        del self._local_mapping[key]

    def __iter__(self):
        return iter({**self._global_mapping, **self._local_mapping})

    def __len__(self):
        return len(self._global_mapping.keys() | self._local_mapping.keys())


class _Interface(_Registry):
    def get_interface(self, name, default):
        if name != "eager" and name not in self:
            raise KeyError(name)
        return super().get(name, default)


REGISTRY = _Interface()
REGISTRY["halve"] = _halve


def _uses_registry(x, name):
    function = REGISTRY[name]
    fallback = REGISTRY.get_interface(name, None)
    return function(x) + fallback(x) + len(REGISTRY) + ("double" in REGISTRY) + bool(REGISTRY)


@pytest.mark.parametrize("name", ["double", "halve"])
def test_mapping_subclass_protocol(name, counter, no_warnings):
    _run(_uses_registry, torch.randn(4), name, backend=counter, fullgraph=True)
    assert counter.count == 1


def test_mapping_subclass_is_guarded(counter, no_warnings):
    compiled = _run(_uses_registry, torch.randn(4), "halve", backend=counter, fullgraph=True)
    REGISTRY["halve"] = _double
    try:
        x = torch.randn(4)
        torch.testing.assert_close(compiled(x, "halve"), _uses_registry(x, "halve"))
    finally:
        REGISTRY["halve"] = _halve
    assert counter.count == 2


def _missing_key(x):
    return x + ("absent" in REGISTRY)  # Mapping.__contains__ catches the KeyError: eager decides


def test_mapping_subclass_missing_key_is_a_clean_break(counter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capture.FallbackWarning)
        _run(_missing_key, torch.randn(4), backend=counter)


# -- dict subclasses with Python methods (transformers' _CanRecordRegistry) --------------------

class _KeyedRegistry(dict):
    """Like transformers' _CanRecordRegistry: writes and `get` keyed on the model's class."""

    def __setitem__(self, model, flags):
        super().__setitem__(type(model).__name__, flags)

    def get(self, model):
        return super().get(type(model).__name__) or {}

    def scaled(self, name, x):
        return x * self["scale"] if name in self else x

    def lookup(self, name):
        return super().__getitem__(name)


class _Owner:
    pass


RECORDS = _KeyedRegistry()
RECORDS[_Owner()] = {"hidden": 1.5}
dict.__setitem__(RECORDS, "scale", 3.0)


def _uses_dict_subclass(x, owner):
    flags = RECORDS.get(owner)
    total = x * flags.get("hidden", 0.0)
    for key, value in RECORDS.items():
        if key == "scale":
            total = total + value
    return (RECORDS.scaled("scale", total) + len(RECORDS) + isinstance(RECORDS, dict) + RECORDS["scale"]
            + RECORDS.lookup("scale"))


def test_dict_subclass_methods(counter, no_warnings):
    _run(_uses_dict_subclass, torch.randn(4), _Owner(), backend=counter, fullgraph=True)
    _run(_uses_dict_subclass, torch.randn(4), _Owner(), backend=counter, fullgraph=True)
    assert counter.count == 1


def test_dict_subclass_keys_are_guarded(counter, no_warnings):
    compiled = _run(_uses_dict_subclass, torch.randn(4), _Owner(), backend=counter, fullgraph=True)
    dict.__setitem__(RECORDS, "_Owner", {"hidden": -2.0})
    try:
        x = torch.randn(4)
        torch.testing.assert_close(compiled(x, _Owner()), _uses_dict_subclass(x, _Owner()))
        dict.__setitem__(RECORDS, "extra", 1)
        torch.testing.assert_close(compiled(x, _Owner()), _uses_dict_subclass(x, _Owner()))
    finally:
        dict.__setitem__(RECORDS, "_Owner", {"hidden": 1.5})
        dict.pop(RECORDS, "extra", None)
    assert counter.count == 3  # a new float (a constant) and a new key: each recompiles


class _RenamingRegistry(_KeyedRegistry):
    """Redefines `in` (transformers' ModelOutput renames old keys): read as an object whose dict
    methods act on the items dict holds."""

    def __contains__(self, name):
        return super().__contains__("scale" if name == "old_scale" else name) and super().__len__() > 0


RENAMING = _RenamingRegistry()
dict.__setitem__(RENAMING, "scale", 2.0)


def _uses_renaming(x):
    return x * RENAMING.lookup("scale") + ("old_scale" in RENAMING) + ("absent" in RENAMING) + len(RENAMING)


def test_dict_subclass_redefining_contains(counter, no_warnings):
    _run(_uses_renaming, torch.randn(4), backend=counter, fullgraph=True)
    assert counter.count == 1


def _writes_dict_subclass(x, owner):
    RECORDS[owner] = {"hidden": 2.0}  # the class's own __setitem__: eager runs it
    return x + 1


def test_dict_subclass_write_is_a_clean_break(counter):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", capture.FallbackWarning)
            _run(_writes_dict_subclass, torch.randn(4), _Owner(), backend=counter)
        assert RECORDS["_Owner"] == {"hidden": 2.0} and "owner" not in RECORDS
    finally:
        dict.__setitem__(RECORDS, "_Owner", {"hidden": 1.5})


# -- contextvars.ContextVar reads (transformers' output collector, kernels' active kernels) ----

import contextvars  # noqa: E402

SCALE = contextvars.ContextVar("scale", default=None)
UNSET = contextvars.ContextVar("unset")


class _Collector:
    def __init__(self, factor):
        self.factor = factor


COLLECTOR = contextvars.ContextVar("collector", default=None)


def _reads_context(x):
    scale = SCALE.get()
    y = x + 1 if scale is None else x * scale
    collector = COLLECTOR.get()
    if collector is not None:
        y = y * collector.factor
    return y + UNSET.get(0.5)


def test_context_var_reads_are_guarded(counter, no_warnings):
    compiled = _run(_reads_context, torch.randn(4), backend=counter, fullgraph=True)
    x = torch.randn(4)
    torch.testing.assert_close(compiled(x), _reads_context(x))
    assert counter.count == 1
    token = SCALE.set(3.0)
    try:
        torch.testing.assert_close(compiled(x), _reads_context(x))  # a new value: recompiled
        collector_token = COLLECTOR.set(_Collector(-2.0))
        try:
            torch.testing.assert_close(compiled(x), _reads_context(x))
            COLLECTOR.get().factor = 4.0  # read through COLLECTOR.get() on every call
            torch.testing.assert_close(compiled(x), _reads_context(x))
        finally:
            COLLECTOR.reset(collector_token)
    finally:
        SCALE.reset(token)
    torch.testing.assert_close(compiled(x), _reads_context(x))
    assert counter.count == 4


def test_context_var_in_another_context(counter, no_warnings):
    compiled = capture.compile(_reads_context, backend=counter, fullgraph=True)
    x = torch.randn(4)
    compiled(x)

    def in_context():
        SCALE.set(5.0)
        return compiled(x)

    torch.testing.assert_close(contextvars.copy_context().run(in_context), x * 5.0 + 0.5)
    torch.testing.assert_close(compiled(x), x + 1.5)


def _sets_context(x):
    token = SCALE.set(2.0)
    y = x * SCALE.get()
    SCALE.reset(token)
    return y + 1


def _sets_context_in_a_method(x):
    collector = _Scoped()
    token = collector.set(2.0)
    y = x * SCALE.get()
    collector.reset(token)
    return y + 1


class _Scoped:
    """Like transformers' CompileableContextVar: set/reset through a method."""

    def set(self, value):
        return SCALE.set(value)

    def reset(self, token):
        SCALE.reset(token)


@pytest.mark.parametrize("fn", [_sets_context, _sets_context_in_a_method], ids=lambda fn: fn.__name__)
def test_context_var_set_is_a_clean_break(fn, counter, no_warnings):
    _run(fn, torch.randn(4), backend=counter)
    assert counter.count >= 2
    assert SCALE.get() is None


def _reads_unset(x):
    return x + UNSET.get()


def test_context_var_unset_raises_like_eager(counter):
    compiled = capture.compile(_reads_unset, backend=counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capture.FallbackWarning)
        with pytest.raises(LookupError):
            compiled(torch.randn(4))


# -- type(module).forward (transformers' GradientCheckpointingLayer wraps forward per class) ---

import functools  # noqa: E402


class _CheckpointingLayer(torch.nn.Module):
    gradient_checkpointing = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        forward = cls.forward

        @functools.wraps(forward)
        def forward_with_checkpointing(self, *args, **kwargs):
            is_outermost = type(self).forward is forward_with_checkpointing
            if self.gradient_checkpointing and self.training and is_outermost:
                raise AssertionError("not in these tests")
            return forward(self, *args, **kwargs) + is_outermost

        cls.forward = forward_with_checkpointing


class _Block(_CheckpointingLayer):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x).relu()


class _Stack(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([_Block(), _Block()])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_module_class_method_read_through_type(counter, no_warnings):
    model = _Stack().eval()
    compiled = capture.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
        _Block.forward = _Block.forward.__wrapped__  # no longer the wrapper: a guard fails, recompiled
        try:
            torch.testing.assert_close(compiled(x), model(x))
        finally:
            _Block.__init_subclass__()
    assert counter.count == 2


def _bound_method_parts(x, holder):
    method = holder.get
    return method.__func__(method.__self__, x) + (method.__self__ is holder)


def test_bound_method_func_and_self(counter, no_warnings):
    _run(_bound_method_parts, torch.randn(4), _Holder(2.0), backend=counter, fullgraph=True)
    assert counter.count == 1


# -- truth of a module container (an empty ModuleList is false) --------------------------------

class _MaybeLayers(torch.nn.Module):
    def __init__(self, count):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(count)])

    def forward(self, x):
        if self.layers:
            x = self.layers[0](x)
        return x + bool(self.layers) + len(self.layers) + bool(self)


@pytest.mark.parametrize("count", [0, 2])
def test_module_container_truth(count, counter, no_warnings):
    model = _MaybeLayers(count)
    compiled = capture.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
        model.layers.append(torch.nn.Linear(4, 4))  # the length is guarded
        torch.testing.assert_close(compiled(x), model(x))
    assert counter.count == 2


# -- id() of objects read through a source (kernels' wrapper keys a dict on id(fn)) -----------

def _keyed_by_id(x, fn, other):
    table = {id(fn): 2.0, id(other): 3.0}
    return x * table[id(fn)] + (id(fn) == id(other))


def test_id_of_an_input_object_is_guarded(counter, no_warnings):
    compiled = _run(_keyed_by_id, torch.randn(4), _double, _halve, backend=counter, fullgraph=True)
    x = torch.randn(4)
    torch.testing.assert_close(compiled(x, _double, _double), _keyed_by_id(x, _double, _double))
    torch.testing.assert_close(compiled(x, _halve, _double), _keyed_by_id(x, _halve, _double))
    torch.testing.assert_close(compiled(x, _double, _halve), _keyed_by_id(x, _double, _halve))
    assert counter.count == 3


# -- ModuleList slices (LLaMA loops over self.layers[: config.num_hidden_layers]) -------------

class _SlicedLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])
        self.count = 2

    def forward(self, x):
        for layer in self.layers[: self.count]:
            x = layer(x).relu()
        tail = self.layers[1:]
        return x + tail[-1](x) + len(tail) + isinstance(tail, torch.nn.ModuleList) + len(self.layers[5:])


def test_module_list_slice(counter, no_warnings):
    model = _SlicedLayers()
    compiled = capture.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
        model.count = 3
        torch.testing.assert_close(compiled(x), model(x))
    assert counter.count == 2


class _SliceAcrossBreak(_SlicedLayers):
    def forward(self, x):
        tail = self.layers[1:]
        x = _opaque(x)
        return tail[0](x)


def test_module_list_slice_across_a_graph_break(counter):
    # Not carried across a break (a rebuilt ModuleList would be a new module on every call): the
    # frame runs eagerly, with one warning.
    model = _SliceAcrossBreak()
    compiled = capture.compile(model, backend=counter)
    x = torch.randn(2, 4)
    with torch.no_grad(), pytest.warns(capture.FallbackWarning, match="ModuleSliceVariable"):
        torch.testing.assert_close(compiled(x), model(x))
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


class _Scaler:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x, *, shift=0.0):
        return x * self.factor + shift


def _calls_with_keywords(x, scaler):
    return scaler(x, shift=2.0) + scaler(x)


def test_calling_an_object_passes_keywords(counter, no_warnings):
    _run(_calls_with_keywords, torch.randn(4), _Scaler(3.0), backend=counter, fullgraph=True)
    assert counter.count == 1


class _SizedModule(torch.nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def __len__(self):
        return self.size

    def forward(self, x):
        return x + len(self) + (1 if self else -1)


@pytest.mark.parametrize("size", [0, 3])
def test_module_with_python_len(size, counter, no_warnings):
    model = _SizedModule(size)
    compiled = capture.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(2)
    torch.testing.assert_close(compiled(x), model(x))
    assert counter.count == 1


# -- hasattr(tensor, name) for a name torch.Tensor lacks (transformers' is_jax_jitting) -------

def _asks_tensor_attribute(x):
    y = x * 2
    return y + hasattr(y, "jax") + hasattr(x, "jax")


def test_hasattr_of_a_python_attribute_on_tensors(counter, no_warnings):
    _run(_asks_tensor_attribute, torch.randn(4), backend=counter, fullgraph=True)
    assert counter.count == 1


def test_hasattr_of_an_attribute_the_input_carries(counter):
    compiled = capture.compile(_asks_tensor_attribute, backend=counter)
    x = torch.randn(4)
    torch.testing.assert_close(compiled(x), _asks_tensor_attribute(x))
    x.jax = "an attribute"  # the input's __dict__ is guarded: traced again, and that is a break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capture.FallbackWarning)
        torch.testing.assert_close(compiled(x), _asks_tensor_attribute(x))


# -- dict subclasses that read their own way (transformers' ModelOutput), passed in ----------

import dataclasses  # noqa: E402


class _Output(collections.OrderedDict):
    """Like transformers' ModelOutput: fields are attributes and items; [] takes a name or a position."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(self.items())[key]
        return tuple(self.values())[key]


@dataclasses.dataclass
class _FieldsOutput(_Output):
    hidden: torch.Tensor = None
    extra: torch.Tensor = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is not None:
                self[field.name] = getattr(self, field.name)

    @property
    def doubled(self):
        return self.hidden * 2


def _reads_output(out):
    return out.hidden + out.doubled + (out.extra if out.extra is not None else 0)


@pytest.mark.parametrize("extra", [None, 1.0], ids=["no_extra", "extra"])
def test_dict_subclass_output_attributes(extra, counter, no_warnings):
    x = torch.randn(4)
    out = _FieldsOutput(hidden=x, extra=None if extra is None else x + extra)
    _run(_reads_output, out, backend=counter, fullgraph=True)
    assert counter.count == 1


def _indexes_output(out):
    total = out["hidden"] + out[0] + out.hidden + len(out) + ("extra" in out)
    for key, value in out.items():
        total = total + value * len(key)
    return total + sum(1 for _ in out) + len(out.keys())


def test_dict_subclass_output_items(counter, no_warnings):
    out = _FieldsOutput(hidden=torch.randn(4))
    compiled = _run(_indexes_output, out, backend=counter, fullgraph=True)
    out["hidden"] = torch.randn(4)  # read through dict.__getitem__(out, 'hidden') on every call
    torch.testing.assert_close(compiled(out), _indexes_output(out))
    assert counter.count == 1
    out["extra"] = torch.randn(4)  # a new key: the keys dict holds are guarded
    torch.testing.assert_close(compiled(out), _indexes_output(out))
    assert counter.count == 2


def _writes_output_item(out):
    out["extra"] = out.hidden * 2  # the class's own __setitem__: eager runs it
    return out.hidden + 1


def test_dict_subclass_output_item_write_is_a_clean_break(counter):
    out, expected = _FieldsOutput(hidden=torch.randn(4)), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capture.FallbackWarning)
        got = capture.compile(_writes_output_item, backend=counter)(out)
    expected_out = _FieldsOutput(hidden=out.hidden)
    expected = _writes_output_item(expected_out)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(out["extra"], expected_out["extra"])
    torch.testing.assert_close(out.extra, expected_out.extra)
