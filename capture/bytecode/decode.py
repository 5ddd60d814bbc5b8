"""Decode a code object into one normalised instruction form for Python 3.11-3.13.

Everything that differs between CPython versions is folded here, so the
interpreter sees a single instruction set. This module must not import torch:
it is tested on interpreters where torch is not installed.
"""
from __future__ import annotations

import bisect
import dataclasses
import dis
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# BINARY_OP's argument (NB_* in CPython's opcode.h), stable across 3.11-3.13.
# Value: (name of the function in `operator`, symbol). Inplace forms follow at +13.
BINARY_OPERATORS: tuple[tuple[str, str], ...] = (
    ("add", "+"), ("and_", "&"), ("floordiv", "//"), ("lshift", "<<"),
    ("matmul", "@"), ("mul", "*"), ("mod", "%"), ("or_", "|"), ("pow", "**"),
    ("rshift", ">>"), ("sub", "-"), ("truediv", "/"), ("xor", "^"),
)

# CALL_INTRINSIC_1 (3.12+) arguments we give a name to; others stay numeric.
INTRINSIC_1 = {1: "PRINT", 2: "IMPORT_STAR", 3: "STOPITERATION_ERROR",
               4: "ASYNC_GEN_WRAP", 5: "UNARY_POSITIVE", 6: "LIST_TO_TUPLE"}

# Opcode spellings that mean the same thing; left side is version-specific.
RENAMES = {
    "LOAD_METHOD": "LOAD_ATTR",               # 3.11; method=True set below
    "LOAD_FAST_CHECK": "LOAD_FAST",           # 3.12+
    "JUMP_BACKWARD_NO_INTERRUPT": "JUMP_BACKWARD",
    "POP_JUMP_FORWARD_IF_FALSE": "POP_JUMP_IF_FALSE",   # 3.11
    "POP_JUMP_BACKWARD_IF_FALSE": "POP_JUMP_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE": "POP_JUMP_IF_TRUE",
    "POP_JUMP_BACKWARD_IF_TRUE": "POP_JUMP_IF_TRUE",
    "POP_JUMP_FORWARD_IF_NONE": "POP_JUMP_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NONE": "POP_JUMP_IF_NONE",
    "POP_JUMP_FORWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
}

# Instructions with no effect on the symbolic state.
DROPPED = frozenset({"CACHE", "PRECALL", "EXTENDED_ARG"})

# Pairs that 3.13 fuses into one instruction; argval is a pair of names.
SUPERINSTRUCTIONS = {
    "LOAD_FAST_LOAD_FAST": ("LOAD_FAST", "LOAD_FAST"),
    "STORE_FAST_STORE_FAST": ("STORE_FAST", "STORE_FAST"),
    "STORE_FAST_LOAD_FAST": ("STORE_FAST", "LOAD_FAST"),
}

# FORMAT_VALUE's conversion (low two bits of its arg) and 3.13's CONVERT_VALUE arg, by name.
CONVERSIONS = {0: None, 1: "str", 2: "repr", 3: "ascii"}

# MAKE_FUNCTION flag bits (3.11/3.12 arg; 3.13 SET_FUNCTION_ATTRIBUTE arg): what sits below the code.
MAKE_FUNCTION_FLAGS = {"defaults": 0x01, "kwdefaults": 0x02, "annotations": 0x04, "closure": 0x08}

_JUMP_OPCODES = frozenset(getattr(dis, "hasjump", ())) | frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


@dataclass(frozen=True)
class Instruction:
    """One normalised instruction.

    opname: normalised name. argval: the decoded argument (a name, a constant,
    an operator string, a jump target offset...). Flags carry what different
    versions encode in argument bits.
    """
    opname: str
    arg: int | None
    argval: Any
    offset: int
    lineno: int | None
    method: bool = False          # LOAD_ATTR in method form (push NULL/self pair)
    push_null: bool = False       # LOAD_GLOBAL also pushes a NULL
    kw_names: tuple[str, ...] = ()  # CALL: names of the trailing keyword args
    inplace: bool = False         # BINARY_OP: augmented assignment (+=)
    jump_target: int | None = None  # offset of the target for jumps
    original_opname: str = field(default="", compare=False)

    def __repr__(self) -> str:
        parts = [f"{self.offset:>4} {self.opname}"]
        if self.argval is not None or self.arg is not None:
            parts.append(repr(self.argval))
        flags = [name for name in ("method", "push_null", "inplace") if getattr(self, name)]
        if self.kw_names:
            flags.append(f"kw_names={self.kw_names}")
        if self.jump_target is not None:
            flags.append(f"to {self.jump_target}")
        if flags:
            parts.append("[" + ", ".join(flags) + "]")
        if self.lineno is not None:
            parts.append(f"(line {self.lineno})")
        return " ".join(parts)

    def signature(self) -> tuple:
        """The version-independent part, for comparing decodes across Pythons."""
        return (self.opname, _comparable(self.argval), self.method, self.push_null,
                self.kw_names, self.inplace)


_new_object = object.__new__


def _built(opname: str, arg: int | None, argval: Any, offset: int, lineno: int | None, original_opname: str,
           jump_target: int | None = None) -> Instruction:
    """Instruction(...) without the frozen dataclass's __init__ (one object.__setattr__ per field,
    ~4 µs: most of decoding). Fields left out keep their defaults, which dataclasses put on the
    class; the object compares, hashes and prints as the one __init__ builds (tested)."""
    instruction = _new_object(Instruction)
    fields = instruction.__dict__
    fields["opname"] = opname
    fields["arg"] = arg
    fields["argval"] = argval
    fields["offset"] = offset
    fields["lineno"] = lineno
    fields["original_opname"] = original_opname
    if jump_target is not None:
        fields["jump_target"] = jump_target
    return instruction


def _flagged(instruction: Instruction, name: str, value: Any) -> Instruction:
    instruction.__dict__[name] = value  # only on one just _built, before anyone sees it
    return instruction


def _comparable(value: Any) -> Any:
    # Code objects and jump offsets differ between versions; names and constants don't.
    if isinstance(value, types.CodeType):
        return f"<code {value.co_name}>"
    return value


@dataclass(frozen=True)
class ExceptionTableEntry:
    """One row of a 3.11+ exception table, in byte offsets: instructions in [start, end) that
    raise jump to `target` with the stack cut to `depth` (plus the offset when `lasti`).
    A `with` block's body is one such range whose target is its cleanup (WITH_EXCEPT_START)."""
    start: int
    end: int
    target: int
    depth: int
    lasti: bool

    def __repr__(self) -> str:
        return f"{self.start} to {self.end} -> {self.target} [{self.depth}]{' lasti' if self.lasti else ''}"


def exception_table(code: types.CodeType) -> tuple[ExceptionTableEntry, ...]:
    """The code object's exception table; dis reports rows in byte offsets on 3.11-3.13 alike."""
    if not code.co_exceptiontable:
        return ()
    entries = getattr(dis.Bytecode(code), "exception_entries", ())
    return tuple(ExceptionTableEntry(e.start, e.end, e.target, e.depth, bool(e.lasti)) for e in entries)


def covering(entries: tuple[ExceptionTableEntry, ...], offsets: list[int]) -> dict[int, ExceptionTableEntry]:
    """offset -> the row active there, for every offset in the sorted `offsets` (rows never overlap,
    so this is the innermost handler): one sweep per row from its start."""
    active: dict[int, ExceptionTableEntry] = {}
    for entry in entries:
        for index in range(bisect.bisect_left(offsets, entry.start), len(offsets)):
            if offsets[index] >= entry.end:
                break
            active[offsets[index]] = entry
    return active


@dataclass(frozen=True)
class DecodedCode:
    """The normalised instructions of one code object plus an offset -> index map."""
    code: types.CodeType
    instructions: tuple[Instruction, ...]
    index_of_offset: dict[int, int]
    exception_table: tuple[ExceptionTableEntry, ...] = ()
    handlers: dict[int, ExceptionTableEntry] = field(default_factory=dict)  # offset -> covering row

    def handler_at(self, offset: int) -> ExceptionTableEntry | None:
        """The exception-table row covering `offset` (e.g. a `with` block's cleanup)."""
        return self.handlers.get(offset)

    def __repr__(self) -> str:
        lines = [f"DecodedCode({self.code.co_name}, {self.code.co_filename}:{self.code.co_firstlineno})"]
        lines += [f"  {inst!r}" for inst in self.instructions]
        return "\n".join(lines)


class RawInstruction(NamedTuple):
    """What the decoder needs of one CPython instruction (dis's fields, line already resolved)."""
    opname: str
    opcode: int
    arg: int | None
    argval: Any
    offset: int
    lineno: int | None


def _lineno(raw: dis.Instruction) -> int | None:
    positions = getattr(raw, "positions", None)
    if positions is not None and positions.lineno is not None:
        return positions.lineno
    line = getattr(raw, "line_number", None)  # 3.13
    if line is not None:
        return line
    starts = raw.starts_line
    return starts if isinstance(starts, int) and not isinstance(starts, bool) else None


def read_with_dis(code: types.CodeType) -> list[RawInstruction]:
    """The reference reader: dis.get_instructions (slow: it builds reprs, positions, labels)."""
    return [RawInstruction(raw.opname, raw.opcode, raw.arg, raw.argval, raw.offset, _lineno(raw))
            for raw in dis.get_instructions(code)]


# -- reading co_code directly: what dis.get_instructions gives, for the fields above, ~5x faster --
_VERSION = sys.version_info[:2]
_OPNAME = dis.opname
_HAS_ARG = frozenset(dis.hasarg) if hasattr(dis, "hasarg") else frozenset(range(dis.HAVE_ARGUMENT, 256))
_CACHES = [0] * 256  # inline CACHE code units after each opcode
for _op, _name in enumerate(dis.opname[:256]):
    _entries = dis._inline_cache_entries  # a list by opcode (3.11, 3.12), a dict by name (3.13)
    _CACHES[_op] = _entries.get(_name, 0) if isinstance(_entries, dict) else _entries[_op]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
# How each opcode's argval comes from its arg: one small table instead of dis's chain of tests.
_CONST, _NAME, _NAME_HALF, _NAME_QUARTER, _LOCAL, _LOCAL_PAIR, _JUMP, _COMPARE, _FORMAT, _UNKNOWN = range(10)
_ARG_KIND: dict[int, int] = {}
_ARG_KIND.update({op: _LOCAL for op in (*dis.haslocal, *dis.hasfree)})
_ARG_KIND.update({op: _NAME for op in dis.hasname})
_ARG_KIND.update({op: _CONST for op in dis.hasconst})
_ARG_KIND.update({op: _JUMP for op in _JUMP_OPCODES})
_ARG_KIND.update({op: _COMPARE for op in dis.hascompare})
_ARG_KIND[dis.opmap["LOAD_GLOBAL"]] = _NAME_HALF
if _VERSION == (3, 11):
    _ARG_KIND[dis.opmap["KW_NAMES"]] = _UNKNOWN  # 3.11's dis leaves its names unresolved
if _VERSION >= (3, 12):
    _ARG_KIND[dis.opmap["LOAD_ATTR"]] = _NAME_HALF
    _ARG_KIND[dis.opmap["LOAD_SUPER_ATTR"]] = _NAME_QUARTER
if _VERSION < (3, 13):
    _ARG_KIND[dis.opmap["FORMAT_VALUE"]] = _FORMAT
else:
    _ARG_KIND.update({dis.opmap[name]: _LOCAL_PAIR for name in SUPERINSTRUCTIONS})
    _ARG_KIND[dis.opmap["CONVERT_VALUE"]] = _FORMAT
_COMPARE_SHIFT = {(3, 11): 0, (3, 12): 4}.get(_VERSION, 5)
_CONVERTERS = (None, str, repr, ascii)


def read_direct(code: types.CodeType) -> list[RawInstruction]:
    """Instructions read straight from co_code, co_consts, co_names and the location table;
    equal to `read_with_dis` (tests/capture/test_bytecode_read.py checks every code object of
    capture/ and tests/capture/ on 3.11, 3.12 and 3.13)."""
    raw_code = code.co_code
    consts, names, varname = code.co_consts, code.co_names, code._varname_from_oparg
    lines = [position[0] for position in code.co_positions()]
    out: list[RawInstruction] = []
    extended = caches = 0
    for offset in range(0, len(raw_code), 2):
        if caches:
            caches -= 1
            continue
        op = raw_code[offset]
        caches = _CACHES[op]
        if op in _HAS_ARG:
            arg = raw_code[offset + 1] | extended
            extended = arg << 8 if op == _EXTENDED_ARG else 0
            kind = _ARG_KIND.get(op)
            if kind is None:
                argval = arg
            elif kind == _LOCAL:
                argval = varname(arg)
            elif kind == _CONST:
                argval = consts[arg]
            elif kind == _NAME_HALF:
                argval = names[arg >> 1]
            elif kind == _NAME:
                argval = names[arg]
            elif kind == _JUMP:
                step = -arg if "JUMP_BACKWARD" in _OPNAME[op] else arg
                argval = offset + 2 + step * 2 + (caches * 2 if _VERSION >= (3, 12) else 0)
            elif kind == _LOCAL_PAIR:
                argval = (varname(arg >> 4), varname(arg & 15))
            elif kind == _COMPARE:
                argval = dis.cmp_op[arg >> _COMPARE_SHIFT]
            elif kind == _NAME_QUARTER:
                argval = names[arg >> 2]
            elif kind == _UNKNOWN:
                argval = dis.UNKNOWN
            else:  # _FORMAT: 3.11/3.12 FORMAT_VALUE, 3.13 CONVERT_VALUE
                argval = _CONVERTERS[arg] if _VERSION >= (3, 13) else (_CONVERTERS[arg & 3], bool(arg & 4))
        else:
            arg = argval = None
            extended = 0
        out.append(RawInstruction(_OPNAME[op], op, arg, argval, offset, lines[offset >> 1]))
    return out


# Opnames `_normalise` rewrites; every other instruction takes the short path (most of them).
_REWRITTEN = frozenset({*SUPERINSTRUCTIONS, "LOAD_METHOD", "LOAD_ATTR", "LOAD_GLOBAL", "CALL", "CALL_KW",
                        "BINARY_OP", "RETURN_CONST", "COMPARE_OP", "CALL_INTRINSIC_1", "STORE_SLICE",
                        "YIELD_VALUE", "LIST_TO_TUPLE", "FORMAT_VALUE", "CONVERT_VALUE", "FORMAT_WITH_SPEC",
                        "MAKE_FUNCTION", "LOAD_SUPER_ATTR", "LOAD_FAST", "END_FOR"})


def _normalise(raw: RawInstruction, code: types.CodeType, lineno: int | None,
               kw_names: tuple[str, ...]) -> list[Instruction]:
    opname = raw.opname
    if opname not in _REWRITTEN:
        jump_target = raw.argval if raw.opcode in _JUMP_OPCODES else None
        return [_built(RENAMES.get(opname, opname), raw.arg, raw.argval, raw.offset, lineno, opname, jump_target)]
    arg, argval, offset = raw.arg, raw.argval, raw.offset
    # The most frequent rewrites first, built directly (no keyword dicts).
    if opname == "LOAD_FAST" and argval not in code.co_cellvars and argval not in code.co_freevars:
        return [_built(opname, arg, argval, offset, lineno, opname)]
    if opname == "LOAD_METHOD":
        return [_flagged(_built("LOAD_ATTR", arg, argval, offset, lineno, opname), "method", True)]
    if opname == "LOAD_ATTR" and sys.version_info >= (3, 12):
        return [_flagged(_built("LOAD_ATTR", arg, argval, offset, lineno, opname), "method", bool(arg & 1))]
    if opname == "LOAD_GLOBAL":
        return [_flagged(_built("LOAD_GLOBAL", arg, argval, offset, lineno, opname), "push_null", bool(arg & 1))]
    if opname in ("CALL", "CALL_KW"):
        return [_flagged(_built("CALL", arg, argval, offset, lineno, opname), "kw_names", kw_names)]
    if opname == "BINARY_OP":
        name, _symbol = BINARY_OPERATORS[arg % len(BINARY_OPERATORS)]
        return [_flagged(_built("BINARY_OP", arg, name, offset, lineno, opname), "inplace",
                         arg >= len(BINARY_OPERATORS))]
    base = dict(arg=arg, argval=argval, offset=offset, lineno=lineno, original_opname=opname)
    if opname in SUPERINSTRUCTIONS:
        first, second = SUPERINSTRUCTIONS[opname]
        name1, name2 = raw.argval
        return [Instruction(first, **{**base, "argval": name1}),
                Instruction(second, **{**base, "argval": name2})]
    if opname == "RETURN_CONST":  # 3.12+: same as 3.11's LOAD_CONST; RETURN_VALUE
        return [Instruction("LOAD_CONST", **base), Instruction("RETURN_VALUE", **{**base, "arg": None, "argval": None})]
    if opname == "COMPARE_OP":
        # argval is the operator string on every version; the arg's bit layout is not.
        return [Instruction("COMPARE_OP", **base)]
    if opname == "CALL_INTRINSIC_1" and INTRINSIC_1.get(raw.arg) == "UNARY_POSITIVE":
        return [Instruction("UNARY_POSITIVE", **{**base, "arg": None, "argval": None})]  # 3.11 spelling
    if opname == "STORE_SLICE":  # 3.12+: container[start:stop] = value, as 3.11 spells it
        return [Instruction("BUILD_SLICE", **{**base, "arg": 2, "argval": 2}),
                Instruction("STORE_SUBSCR", **{**base, "arg": None, "argval": None})]
    if opname == "YIELD_VALUE":  # 3.12+ numbers the exception depth in the arg
        return [Instruction("YIELD_VALUE", **{**base, "arg": None, "argval": None})]
    if opname == "LIST_TO_TUPLE":  # 3.11 spelling of 3.12's intrinsic
        return [Instruction("CALL_INTRINSIC_1", **{**base, "arg": 6, "argval": "LIST_TO_TUPLE"})]
    if opname == "CALL_INTRINSIC_1":
        return [Instruction("CALL_INTRINSIC_1", **{**base, "argval": INTRINSIC_1.get(raw.arg, raw.arg)})]
    if opname == "FORMAT_VALUE":  # 3.11/3.12: one instruction; 3.13 spells it as up to two
        conversion, has_spec = CONVERSIONS[raw.arg & 3], bool(raw.arg & 4)
        plain = {**base, "arg": None, "argval": None}
        if has_spec:  # 3.13's form: convert the value beneath the spec, then format
            swap = Instruction("SWAP", **{**plain, "arg": 2, "argval": 2})
            converted = [swap, Instruction("CONVERT_VALUE", **{**plain, "argval": conversion}), swap] \
                if conversion else []
            return converted + [Instruction("FORMAT_WITH_SPEC", **plain)]
        converted = [Instruction("CONVERT_VALUE", **{**plain, "argval": conversion})] if conversion else []
        return converted + [Instruction("FORMAT_SIMPLE", **plain)]
    if opname == "CONVERT_VALUE":
        return [Instruction("CONVERT_VALUE", **{**base, "argval": CONVERSIONS[raw.arg]})]
    if opname == "FORMAT_WITH_SPEC":
        return [Instruction("FORMAT_WITH_SPEC", **{**base, "arg": None, "argval": None})]
    if opname == "MAKE_FUNCTION":  # argval: the flags saying what lies beneath (3.13: SET_FUNCTION_ATTRIBUTE adds)
        return [Instruction("MAKE_FUNCTION", **{**base, "argval": raw.arg or 0})]
    if opname == "LOAD_SUPER_ATTR":  # 3.12+: [super, class, self] -> attribute; bit 0 is the method form
        return [Instruction("LOAD_SUPER_ATTR", **{**base, "argval": raw.argval}, method=bool(raw.arg & 1))]
    if opname == "LOAD_FAST":  # a cell (the others returned above)
        return [Instruction("LOAD_CLOSURE", **base)]  # 3.13 loads a cell for a closure with LOAD_FAST
    if opname == "END_FOR":  # 3.12 pops two values; 3.13 pops one (a POP_TOP follows)
        pops = 2 if sys.version_info < (3, 13) else 1
        return [Instruction("POP_TOP", **{**base, "arg": None, "argval": None})] * pops
    jump_target = raw.argval if raw.opcode in _JUMP_OPCODES else None
    return [Instruction(RENAMES.get(opname, opname), **base, jump_target=jump_target)]


_DECODED: "weakref.WeakKeyDictionary[types.CodeType, DecodedCode]" = weakref.WeakKeyDictionary()


def decode(code: types.CodeType) -> DecodedCode:
    """Decode `code` (a code object or a function) into normalised instructions (cached:
    inlined callees and loop bodies are decoded once)."""
    code = getattr(code, "__code__", code)
    decoded = _DECODED.get(code)
    if decoded is None:
        decoded = _DECODED[code] = _decode(code)
    return decoded


def _decode(code: types.CodeType, read=read_direct) -> DecodedCode:
    every = read(code)
    raws = [raw for raw in every if raw.opname not in DROPPED]
    instructions: list[Instruction] = []
    index_of_offset: dict[int, int] = {}
    pending_offsets: list[int] = []  # offsets of dropped instructions: they map to the next kept one
    kw_names: tuple[str, ...] = ()
    lineno: int | None = code.co_firstlineno
    for position, raw in enumerate(raws):
        lineno = raw.lineno or lineno
        pending_offsets.append(raw.offset)
        if raw.opname == "KW_NAMES":  # 3.11/3.12: names for the next CALL
            kw_names = tuple(code.co_consts[raw.arg])
            continue
        if (raw.opname == "LOAD_CONST" and position + 1 < len(raws)
                and raws[position + 1].opname == "CALL_KW"):  # 3.13: names pushed as a tuple
            kw_names = tuple(raw.argval)
            continue
        if raw.opname == "SET_FUNCTION_ATTRIBUTE":  # 3.13: fold into the MAKE_FUNCTION just before
            previous = instructions[-1]
            assert previous.opname == "MAKE_FUNCTION", previous
            instructions[-1] = dataclasses.replace(previous, argval=previous.argval | raw.arg)
            continue
        normalised = _normalise(raw, code, lineno, kw_names)
        if raw.opname in ("CALL", "CALL_KW"):
            kw_names = ()
        for offset in pending_offsets:
            index_of_offset[offset] = len(instructions)
        pending_offsets.clear()
        instructions.extend(normalised)
    for offset in pending_offsets:
        index_of_offset[offset] = len(instructions)
    following = len(instructions)
    for raw in reversed(every):  # a jump may land on a PRECALL (resume functions)
        if raw.opname in DROPPED:
            index_of_offset.setdefault(raw.offset, following)
        else:
            following = index_of_offset.get(raw.offset, following)
    table = exception_table(code)
    handlers = covering(table, sorted(index_of_offset)) if table else {}
    return DecodedCode(code, tuple(instructions), index_of_offset, table, handlers)


def disassemble(code: types.CodeType) -> str:
    """The original (non-normalised) disassembly, for the `bytecode` log."""
    import io
    out = io.StringIO()
    dis.dis(code, file=out)
    return out.getvalue()
