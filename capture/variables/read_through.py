"""Objects whose class has a custom, known-pure `__getattribute__` (transformers' configs map
aliases through `attribute_map`). Their attributes cannot be found statically, so each read runs
the real `__getattribute__` and its result is guarded through the source `obj.name`, which the
guard evaluates the same way on every call: exact as long as the read is pure, hence the table."""
from __future__ import annotations

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource, GetItemSource
from .base import VariableTracker

# module:qualname of __getattribute__ implementations known to be pure and deterministic, each with
# the instance-__dict__ entries that must be absent (or None) for that: a heterogeneous config's
# reads can log or raise.
PURE_GETATTRIBUTE = {
    "transformers.configuration_utils:PreTrainedConfig.__getattribute__": (),
    "transformers.configuration_utils:PretrainedConfig.__getattribute__": (),
    "transformers.integrations.heterogeneity.configuration_utils:HeterogeneousConfigMixin.__getattribute__":
        ("_heterogeneity_spec",),
}


def _name(function) -> str:
    return f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"


def _custom_getattributes(value) -> list[str]:
    return [_name(klass.__dict__["__getattribute__"]) for klass in type(value).__mro__
            if "__getattribute__" in klass.__dict__ and klass is not object]


def _unset_entries(value) -> set[str]:
    return {entry for name in _custom_getattributes(value) for entry in PURE_GETATTRIBUTE[name]}


def is_read_through(value) -> bool:
    """Every custom __getattribute__ in the class's MRO is a known pure one (and there is one)."""
    custom = _custom_getattributes(value)
    instance_dict = getattr(value, "__dict__", None)
    return (bool(custom) and all(name in PURE_GETATTRIBUTE for name in custom) and isinstance(instance_dict, dict)
            and all(instance_dict.get(entry) is None for entry in _unset_entries(value)))


def read_through_guards(value, source) -> list[Guard]:
    guards = [Guard(source, "TYPE_MATCH", type(value), noun="object")]
    instance_dict = AttrSource(source, "__dict__")
    for entry in sorted(_unset_entries(value)):
        if entry in value.__dict__:  # present as None
            guards.append(Guard(GetItemSource(instance_dict, entry), "CONSTANT_MATCH", None, noun="object"))
        else:
            guards.append(Guard(instance_dict, "NOT_IN", entry, noun="object"))
    return guards


class ReadThroughObjectVariable(VariableTracker):
    """An object read from outside (source set; TYPE_MATCH guarded) whose attributes are read for real."""

    def __init__(self, value, source):
        super().__init__(source)
        self.value = value

    def python_type(self) -> type:
        return type(self.value)

    def truth(self, tx) -> bool:
        if any(hasattr(type(self.value), special) for special in ("__bool__", "__len__")):
            raise Unsupported(f"truth value of a {type(self.value).__qualname__}")
        return True

    def var_getattr(self, tx, name: str) -> VariableTracker:
        try:
            value = getattr(self.value, name)
        except AttributeError as error:  # eager raises it too
            raise TorchOpError(f"attribute {name!r} of a {type(self.value).__qualname__}", error) from error
        return tx.wrap(value, AttrSource(self.source, name))

    def has_attribute(self, tx, name: str) -> bool:
        if hasattr(self.value, name):
            self.var_getattr(tx, name)  # guards the value, so the attribute must still be there
            return True
        tx.output.guards.add(Guard(self.source, "NO_ATTR", name, noun="object"))
        return False

    def __repr__(self) -> str:
        return f"ReadThroughObjectVariable({type(self.value).__qualname__})"
