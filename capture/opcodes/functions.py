"""Making functions and cells in the traced code, calls with */** arguments, super(),
attribute assignment on objects built here, and generators."""
from __future__ import annotations

from ..bytecode.decode import MAKE_FUNCTION_FLAGS
from ..exc import TorchOpError, Unsupported
from ..variables import NULL, NullVariable, wrap_constant
from ..variables.dicts import ConstDictVariable
from ..variables.iterators import Yielded
from ..variables.nested import CellVariable, CodeVariable, NestedFunctionVariable, find_cell
from ..variables.user_objects import SuperVariable
from .table import handles


@handles("MAKE_FUNCTION")
def make_function(tx, inst):
    code = tx.pop()
    assert isinstance(code, CodeVariable), code
    flags = inst.argval
    closure = tx.pop() if flags & MAKE_FUNCTION_FLAGS["closure"] else None
    if flags & MAKE_FUNCTION_FLAGS["annotations"]:
        tx.pop()
    kwdefaults = tx.pop() if flags & MAKE_FUNCTION_FLAGS["kwdefaults"] else None
    defaults = tx.pop() if flags & MAKE_FUNCTION_FLAGS["defaults"] else None
    cells = tuple(closure.items) if closure is not None else ()
    tx.push(NestedFunctionVariable(code.code, defaults, kwdefaults, cells, tx))


# -- cells -----------------------------------------------------------------------------------

@handles("MAKE_CELL")
def make_cell(tx, inst):
    tx.locals[inst.argval] = CellVariable(tx.locals.get(inst.argval, CellVariable.EMPTY))


@handles("LOAD_CLOSURE")
def load_closure(tx, inst):
    tx.push(find_cell(tx, inst.argval))


@handles("LOAD_DEREF")
def load_deref(tx, inst):
    tx.push(find_cell(tx, inst.argval).load(tx, inst.argval))


@handles("STORE_DEREF")
def store_deref(tx, inst):
    find_cell(tx, inst.argval).store(tx, inst.argval, tx.pop())


@handles("DELETE_DEREF")
def delete_deref(tx, inst):
    find_cell(tx, inst.argval).delete(tx, inst.argval)


@handles("LOAD_FAST_AND_CLEAR")
def load_fast_and_clear(tx, inst):
    # 3.12+ inlined comprehensions save the outer binding (NULL if unbound); STORE_FAST restores it
    tx.push(tx.locals.pop(inst.argval, NULL))


# -- calls -----------------------------------------------------------------------------------

def _callable_and_self(first, second):
    if isinstance(first, NullVariable):
        return second, []
    if isinstance(second, NullVariable):
        return first, []
    return first, [second]  # [method, self]


@handles("CALL_FUNCTION_EX")
def call_function_ex(tx, inst):
    keywords = tx.pop() if inst.arg & 1 else None
    positional = tx.pop()
    function, bound_self = _callable_and_self(*tx.popn(2))
    kwargs = {}
    if keywords is not None:
        if not isinstance(keywords, ConstDictVariable):
            raise Unsupported(f"**{keywords!r} in a call")
        for key in keywords.items:
            if not isinstance(key, str):
                raise TorchOpError("**kwargs", TypeError("keywords must be strings"))
            kwargs[key] = keywords.value_of(tx, key)
    tx.push(function.call(tx, [*bound_self, *positional.unpack(tx)], kwargs))


@handles("LOAD_SUPER_ATTR")
def load_super_attr(tx, inst):
    obj, cls, super_fn = tx.pop(), tx.pop(), tx.pop()
    if not (super_fn.is_python_constant() and super_fn.as_python_constant() is super):
        raise Unsupported(f"`super` rebound to {super_fn!r}")
    value = SuperVariable(cls, obj).var_getattr(tx, inst.argval)
    if inst.method:
        tx.push(NULL)
    tx.push(value)


# -- attributes of objects built here --------------------------------------------------------

@handles("STORE_ATTR")
def store_attr(tx, inst):
    obj, value = tx.pop(), tx.pop()
    store = getattr(obj, "store_attr", None)
    if store is None:
        raise Unsupported(f"attribute assignment .{inst.argval} on {obj!r}")
    store(tx, inst.argval, value)


# -- generators ------------------------------------------------------------------------------

@handles("RETURN_GENERATOR")
def return_generator(tx, inst):
    if tx.depth == 0:  # callees that are generators run as GeneratorVariables; the frame itself cannot
        raise Unsupported("compiling a generator or coroutine function",
                          hint="compile the function that consumes the generator instead")
    tx.push(wrap_constant(None))  # what the POP_TOP that follows discards


@handles("YIELD_VALUE")
def yield_value(tx, inst):
    value = tx.pop()
    tx.push(wrap_constant(None))  # the value sent in on resumption (next() sends None)
    raise Yielded(value)
