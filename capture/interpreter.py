"""The symbolic interpreter: runs normalised bytecode over variables, recording tensor ops.

A table (opcodes/table.py) maps each normalised opname to a handler: the core ones are methods
here, the rest live by concern in opcodes/. Anything not in the table is Unsupported("opcode X").
"""
from __future__ import annotations

import builtins
import dis
import functools
import linecache
import operator
import types
from typing import Any

from .bytecode import Instruction, decode
from .bytecode.decode import exception_table
from .exc import TorchOpError, Unsupported
from .opcodes import context, effects, functions, imports  # noqa: F401  (they fill the handler table)
from .opcodes.containers import inplace_container_op
from .opcodes.table import HANDLERS, handles
from .output_graph import OutputGraph
from .sources import BuiltinSource, ClosureSource, Frame, GlobalSource, LocalSource
from .variables import (NULL, BaseListVariable, ListVariable, NullVariable,
                        TensorVariable, TupleVariable, VariableTracker, wrap_constant, wrap_value)
from .variables import builder, methods
from .variables.constant import UNARY_OPERATORS
from .variables.dicts import ConstDictVariable
from .variables.iterators import get_iter
from .variables.nested import CodeVariable
from .variables.symbolic import SliceVariable, SymNodeVariable, has_symbols, sequences_equal

COMPARE_OPERATORS = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
                     ">": operator.gt, ">=": operator.ge}

NUMBERS = (int, float, bool)  # what symbolic sizes compute with; anything else specialises them


class _LazyLocal:
    """An argument not yet read: wrapped (and guarded) only when the code loads it."""

    def __init__(self, value: Any):
        self.value = value


class BreakHere(Exception):
    """The re-trace of a frame reached the instruction where it graph-breaks."""


_TRY_COVERED: dict[types.CodeType, frozenset[int]] = {}


def _caught_by_try(code: types.CodeType, offset: int) -> bool:
    """Whether an exception at `offset` goes to a `try` statement's handler (`except` or
    `finally`) rather than a `with` block's cleanup or nowhere."""
    covered = _TRY_COVERED.get(code)
    if covered is None:
        instructions = list(dis.get_instructions(code))
        after = {a.offset: b.opname for a, b in zip(instructions, instructions[1:])}
        tries = [entry for entry in exception_table(code) if not entry.lasti
                 and after.get(entry.target) != "WITH_EXCEPT_START"]
        covered = _TRY_COVERED[code] = frozenset(i.offset for i in instructions
                                                  if any(e.start <= i.offset < e.end for e in tries))
    return offset in covered


class _Returned(Exception):
    def __init__(self, value: VariableTracker):
        self.value = value


PUSHED_NULL = NullVariable()  # a NULL from a PUSH_NULL instruction, not from a load's flag
MAX_INLINE_DEPTH = 32
MAX_INSTRUCTIONS = 100_000


@functools.lru_cache(maxsize=4096)  # one string per source line, not one per instruction
def _stack_trace(filename: str, name: str, lineno: int | None) -> str:
    line = linecache.getline(filename, lineno or 0).strip()
    return f'  File "{filename}", line {lineno}, in {name}\n    {line}'


class InstructionTranslator:
    def __init__(self, code: types.CodeType, frame: Frame, output: OutputGraph, *, depth: int = 0,
                 f_globals: dict | None = None, global_source=None, closure: tuple | None = None,
                 closure_source=None):
        self.code = code
        self.frame = frame
        self.output = output
        self.depth = depth
        # Inlined callees read their own globals and closure cells, named by sources rooted at the frame.
        self.f_globals = frame.G if f_globals is None else f_globals
        self.global_source = global_source or GlobalSource
        self.closure = frame.C if closure is None else closure
        self.closure_source = closure_source or ClosureSource
        self.decoded = decode(code)
        self.instructions = self.decoded.instructions
        self.stack: list[VariableTracker] = []
        self.locals: dict[str, Any] = {name: _LazyLocal(value) for name, value in frame.L.items()}
        self.closure_variables: dict[str, VariableTracker] = {}
        self.ip = 0
        self.current: Instruction | None = None
        self.block_stack: list = []  # active `with` blocks (opcodes/context.py), innermost last
        self.started = 0  # output.instruction_count when the current instruction began

    # -- driving --
    def run(self) -> VariableTracker:
        """Interpret until RETURN_VALUE; returns the returned variable."""
        lineno = -1  # callees restore our location when they return (inline.py), so per line is enough
        try:
            while True:
                self.current = instruction = self.instructions[self.ip]
                self.ip += 1
                count = self.output.instruction_count = self.output.instruction_count + 1
                if count > MAX_INSTRUCTIONS:
                    raise Unsupported(f"more than {MAX_INSTRUCTIONS} instructions traced (unbounded loop?)")
                if count == self.output.break_at:  # a graph break's re-trace stops here (breaks.py)
                    raise BreakHere()
                self.started = count
                if instruction.lineno != lineno:
                    lineno = instruction.lineno
                    self.output.location = self._stack_trace(instruction)
                handler = HANDLERS.get(instruction.opname)
                if handler is None:
                    raise Unsupported(f"opcode {instruction.opname}")
                handler(self, instruction)
        except _Returned as returned:
            return returned.value
        except (Unsupported, TorchOpError) as error:
            if isinstance(error, TorchOpError) and self.current is not None and \
                    _caught_by_try(self.code, self.current.offset):
                # The code catches what it raises (e.g. a query that raises on this machine): a
                # graph break runs it for real there, and the `except` handles its exception.
                error = Unsupported(f"{error}, inside a `try` block",
                                    hint="the call runs natively at a graph break; its `except` runs eagerly")
            if isinstance(error, Unsupported):
                if self.depth == 0 and error.break_count is None:
                    error.break_count = self.started
                lineno = self.current.lineno if self.current else self.code.co_firstlineno
                error.locate(self.code.co_filename, lineno, linecache.getline(self.code.co_filename, lineno or 0))
            raise error

    def _stack_trace(self, instruction: Instruction) -> str:
        return _stack_trace(self.code.co_filename, self.code.co_name, instruction.lineno)

    def push(self, value: VariableTracker) -> None:
        self.stack.append(value)

    def pop(self) -> VariableTracker:
        return self.stack.pop()

    def popn(self, count: int) -> list[VariableTracker]:
        if count == 0:
            return []
        values = self.stack[-count:]
        del self.stack[-count:]
        return values

    def jump_to(self, offset: int) -> None:
        self.ip = self.decoded.index_of_offset[offset]  # backward jumps: loops are unrolled

    # -- what values ask of the translator ----------------------------------------------------
    # The kinds of values (variables/) sit below the modules that know every kind: the builder,
    # the container methods, the inliner. They reach those through the translator, never by import.
    def wrap(self, value: Any, source, guard: bool = True) -> VariableTracker:
        """The variable for `value` read through `source`, guarded (variables/builder.py)."""
        return wrap_value(self, value, source, guard)

    def build(self, value: Any) -> VariableTracker:
        """The variable for a value computed during the trace (a dict key, an item of a constant):
        no source, nothing to guard (variables/builder.py)."""
        return builder.build_value(value)

    def constant_attribute(self, value: Any) -> VariableTracker:
        """The variable for an attribute read from a constant: a method is a pure builtin."""
        return builder.constant_attribute(value)

    def container_method(self, owner: VariableTracker, name: str, python_type: type) -> VariableTracker:
        """`owner.name` for a list, tuple, namedtuple, dict or set (variables/methods.py)."""
        return methods.container_method(self, owner, name, python_type)

    def inline(self, function: VariableTracker, args: list, kwargs: dict) -> VariableTracker:
        """Trace `function(*args, **kwargs)`, a call of a user function, by running its code in a
        child translator. inline.InliningTranslator (the translator capture runs) implements it:
        inline.py makes translators, so it sits above this module."""
        raise NotImplementedError("inlining needs an inline.InliningTranslator")

    # -- trivial --
    @handles("RESUME", "NOP", "COPY_FREE_VARS", "PRECALL", "EXTENDED_ARG", "CACHE")
    def nop(self, inst):
        pass

    @handles("POP_TOP")
    def pop_top(self, inst):
        self.pop()

    @handles("PUSH_NULL")
    def push_null(self, inst):
        self.push(PUSHED_NULL)  # where the code put it (a graph break keeps 3.13's order)

    @handles("COPY")
    def copy(self, inst):
        self.push(self.stack[-inst.arg])

    @handles("SWAP")
    def swap(self, inst):
        self.stack[-1], self.stack[-inst.arg] = self.stack[-inst.arg], self.stack[-1]

    @handles("RETURN_VALUE")
    def return_value(self, inst):
        raise _Returned(self.pop())

    # -- names --
    @handles("LOAD_FAST")
    def load_fast(self, inst):
        name = inst.argval
        if name not in self.locals:
            raise Unsupported(f"local {name!r} read before assignment")
        value = self.locals[name]
        if isinstance(value, _LazyLocal):
            value = self.locals[name] = self.resolve_local(name, value)
        self.push(value)

    def resolve_local(self, name: str, value: Any) -> VariableTracker:
        """A local's variable, wrapping (and guarding) an argument on its first read."""
        if isinstance(value, _LazyLocal):
            value = wrap_value(self, value.value, LocalSource(name))
        return value

    @handles("STORE_FAST")
    def store_fast(self, inst):
        value = self.pop()
        if value is NULL:  # restoring a binding that LOAD_FAST_AND_CLEAR found unbound
            self.locals.pop(inst.argval, None)
        else:
            self.locals[inst.argval] = value

    @handles("DELETE_FAST")
    def delete_fast(self, inst):
        self.locals.pop(inst.argval, None)

    @handles("LOAD_CONST")
    def load_const(self, inst):
        if isinstance(inst.argval, types.CodeType):  # about to become a function (MAKE_FUNCTION)
            self.push(CodeVariable(inst.argval))
            return
        self.push(wrap_constant(inst.argval))

    @handles("LOAD_GLOBAL")
    def load_global(self, inst):
        name = inst.argval
        written = self.output.side_effects.read(self.f_globals, name)  # STORE_GLOBAL earlier in the trace
        if written is not None:
            if written.value is None:
                raise TorchOpError(f"global {name}", NameError(f"name {name!r} is not defined"))
            value = written.value
        elif name in self.f_globals:
            value = wrap_value(self, self.f_globals[name], self.global_source(name))
        elif name in self.frame.B:
            value = wrap_value(self, self.frame.B[name], BuiltinSource(name))
        else:
            raise Unsupported(f"name {name!r} is not defined")
        if inst.push_null:
            self.push(NULL)
        self.push(value)

    @handles("LOAD_ATTR")
    def load_attr(self, inst):
        owner = self.pop()
        value = owner.var_getattr(self, inst.argval)
        if inst.method:
            self.push(NULL)  # CALL drops the NULL wherever it sits in the pair
        self.push(value)

    # -- calls --
    @handles("CALL")
    def call(self, inst):
        args = self.popn(inst.arg)
        first, second = self.popn(2)
        if isinstance(first, NullVariable):
            function = second
        elif isinstance(second, NullVariable):
            function = first
        else:  # [method, self] as pushed by a real method load
            function, args = first, [second, *args]
        keyword_count = len(inst.kw_names)
        kwargs = dict(zip(inst.kw_names, args[len(args) - keyword_count:]))
        positional = args[:len(args) - keyword_count]
        self.push(function.call(self, positional, kwargs))

    # -- operators --
    @handles("BINARY_OP")
    def binary_op(self, inst):
        right, left = self.pop(), self.pop()
        function = getattr(operator, inst.argval)
        if inst.inplace and isinstance(left, TensorVariable):  # x += y mutates x (recorded in the graph)
            inplace = getattr(operator, "i" + inst.argval.rstrip("_"))
            self.push(self.output.call_op("call_function", inplace, [left, right], {}))
            return
        if inst.inplace and not left.is_python_constant():
            result = inplace_container_op(self, function, left, right)  # `xs += [...]` on a list built here
            if result is not None:
                self.push(result)
                return
            raise Unsupported(f"in-place operator {inst.argval} on {left!r} (augmented assignment mutates it)",
                              hint="write `x = x + y` instead of `x += y`")
        self.push(self.apply_operator(function, [left, right]))

    @handles("COMPARE_OP")
    def compare_op(self, inst):
        right, left = self.pop(), self.pop()
        self.push(self.apply_operator(COMPARE_OPERATORS[inst.argval], [left, right]))

    @handles("UNARY_NEGATIVE", "UNARY_POSITIVE", "UNARY_INVERT", "UNARY_NOT")
    def unary_op(self, inst):
        operand = self.pop()
        if inst.opname == "UNARY_NOT" and not operand.is_python_constant():
            self.push(wrap_constant(not self.truthiness(operand)))
            return
        self.push(self.apply_operator(UNARY_OPERATORS[inst.opname], [operand]))

    @handles("CALL_INTRINSIC_1")
    def call_intrinsic_1(self, inst):
        if inst.argval == "LIST_TO_TUPLE":
            self.push(TupleVariable(self.pop().unpack(self)))
        else:
            raise Unsupported(f"opcode CALL_INTRINSIC_1 ({inst.argval})")

    def apply_operator(self, function, operands: list[VariableTracker]) -> VariableTracker:
        """Tensor operands: record a call_function. Constants: fold now."""
        if any(isinstance(operand, TensorVariable) for operand in operands):
            return self.output.call_op("call_function", function, operands, {})
        if any(isinstance(operand, SymNodeVariable) for operand in operands) and all(
                isinstance(operand, SymNodeVariable) or (operand.is_python_constant() and
                                                         type(operand.as_python_constant()) in NUMBERS)
                for operand in operands):
            return self.output.call_op("call_function", function, operands, {})  # symbolic size arithmetic
        if function in (operator.eq, operator.ne) and all(isinstance(operand, BaseListVariable) for operand in operands) \
                and any(map(has_symbols, operands)):
            return wrap_constant(sequences_equal(*operands) == (function is operator.eq))
        sequence_of_sizes = function in (operator.add, operator.mul) and any(  # (t + (n,): keep n symbolic)
            isinstance(operand, BaseListVariable) and has_symbols(operand) for operand in operands)
        if not sequence_of_sizes and all(operand.is_python_constant() for operand in operands):
            try:
                return wrap_constant(function(*(operand.as_python_constant() for operand in operands)))
            except Exception as error:  # ZeroDivisionError & co: eager will raise it for real
                raise TorchOpError(f"constant {function.__name__}", error) from error
        if function in (operator.add, operator.mul) and isinstance(operands[0], BaseListVariable):
            return self._sequence_arithmetic(function, *operands)
        if function is operator.mul and isinstance(operands[1], BaseListVariable):  # 3 * [x]
            return self._sequence_arithmetic(function, operands[1], operands[0])
        if function is operator.or_ and isinstance(operands[0], ConstDictVariable):
            merged = operands[0].copy(self)  # d | e: a new dict
            merged.update_from(self, operands[1])
            return merged
        raise Unsupported(f"operator {function.__name__} on {', '.join(map(repr, operands))}")

    def _sequence_arithmetic(self, function, left: BaseListVariable, right: VariableTracker):
        result_type = ListVariable if left.python_container is list else TupleVariable
        if function is operator.add and isinstance(right, BaseListVariable) and (
                (left.python_container is list) == (right.python_container is list)):
            return result_type(left.items + right.items)
        if function is operator.mul and right.is_python_constant():
            return result_type(left.items * right.as_python_constant())
        raise Unsupported(f"operator {function.__name__} on {left!r} and {right!r}")

    # -- containers --
    @handles("BUILD_TUPLE")
    def build_tuple(self, inst):
        self.push(TupleVariable(self.popn(inst.arg)))

    @handles("BUILD_LIST")
    def build_list(self, inst):
        self.push(ListVariable(self.popn(inst.arg)))

    @handles("LIST_EXTEND")
    def list_extend(self, inst):
        items = self.pop().unpack(self)
        target = self.stack[-inst.arg]
        if not isinstance(target, ListVariable) or target.source is not None:
            raise Unsupported("extending a list that came from outside the function")
        target.items.extend(items)

    @handles("BUILD_SLICE")
    def build_slice(self, inst):
        parts = self.popn(inst.arg)
        if any(isinstance(part, SymNodeVariable) for part in parts):
            self.push(SliceVariable(parts))  # a symbolic bound stays symbolic in a tensor index
            return
        self.push(wrap_constant(slice(*(part.as_python_constant() for part in parts))))

    @handles("BINARY_SUBSCR")
    def binary_subscr(self, inst):
        index, container = self.pop(), self.pop()
        self.push(container.getitem(self, index))

    @handles("BINARY_SLICE")
    def binary_slice(self, inst):
        stop, start, container = self.pop(), self.pop(), self.pop()
        if isinstance(start, SymNodeVariable) or isinstance(stop, SymNodeVariable):
            self.push(container.getitem(self, SliceVariable([start, stop])))
            return
        index = slice(start.as_python_constant(), stop.as_python_constant())
        self.push(container.getitem(self, wrap_constant(index)))

    @handles("GET_ITER")
    def get_iter(self, inst):
        self.push(get_iter(self, self.pop()))

    @handles("FOR_ITER")
    def for_iter(self, inst):
        iterator = self.stack[-1]
        if not hasattr(iterator, "next_item"):
            raise Unsupported(f"iterating over {iterator!r}")
        item = iterator.next_item(self)
        if item is not None:
            self.push(item)
            return
        target = self.decoded.index_of_offset[inst.jump_target]
        if self.instructions[target].original_opname == "END_FOR":
            self.push(NULL)  # 3.12+: END_FOR (normalised to POP_TOPs) drops the iterator and this
        else:
            self.pop()       # 3.11: the iterator is popped and the loop left
        self.ip = target

    @handles("LIST_APPEND")
    def list_append(self, inst):
        item = self.pop()
        target = self.stack[-inst.arg]
        if not isinstance(target, ListVariable) or target.source is not None:
            raise Unsupported("appending to a list that came from outside the function")
        target.items.append(item)

    @handles("UNPACK_SEQUENCE")
    def unpack_sequence(self, inst):
        items = self.pop().unpack(self)
        if len(items) != inst.arg:
            raise Unsupported(f"unpacking {len(items)} values into {inst.arg} names")
        self.stack.extend(reversed(items))

    # -- forward branches on trace-time constants --
    def truthiness(self, value: VariableTracker) -> bool:
        if isinstance(value, TensorVariable):
            raise Unsupported("branching on a tensor's value (data-dependent control flow)")
        if isinstance(value, BaseListVariable):
            return bool(value.items)
        truth = getattr(value, "truth", None)
        if truth is not None:  # dicts, sets, objects, functions built here...
            return truth(self)
        if value.is_python_constant():
            return bool(value.as_python_constant())
        return True  # modules, functions: always truthy

    @handles("TO_BOOL")
    def to_bool(self, inst):
        self.push(wrap_constant(self.truthiness(self.pop())))

    @handles("JUMP_FORWARD", "JUMP_BACKWARD")
    def jump(self, inst):
        self.jump_to(inst.jump_target)

    @handles("POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE")
    def pop_jump_if(self, inst):
        if self.truthiness(self.pop()) == (inst.opname == "POP_JUMP_IF_TRUE"):
            self.jump_to(inst.jump_target)

    @handles("POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE")
    def pop_jump_if_none(self, inst):
        value = self.pop()
        is_none = value.is_python_constant() and value.as_python_constant() is None
        if is_none == (inst.opname == "POP_JUMP_IF_NONE"):
            self.jump_to(inst.jump_target)

    @handles("JUMP_IF_FALSE_OR_POP", "JUMP_IF_TRUE_OR_POP")
    def jump_or_pop(self, inst):
        if self.truthiness(self.stack[-1]) == (inst.opname == "JUMP_IF_TRUE_OR_POP"):
            self.jump_to(inst.jump_target)
        else:
            self.pop()


def builtins_of(globals_: dict) -> dict:
    value = globals_.get("__builtins__", builtins)
    return value if isinstance(value, dict) else vars(value)

