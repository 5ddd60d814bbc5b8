"""A fuzz program: inputs (explicit values and layouts), straight-line statements, outputs.

A program prints as Python source, `make_inputs()` plus `fn(...)`, and that source is what runs
(in the generator, the worker and a repro alike), so a failure always reads as plain Python.
Statements print from the op table (ops.py); the program itself holds only data.
"""
from __future__ import annotations

import ast
import dataclasses
import math
import re
import string
import warnings
from dataclasses import dataclass

import torch

from .values import lit


@dataclass(frozen=True)
class Var:
    """A name in the program; prints bare."""
    name: str

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Code:
    """Source text printed as it is (a subscript such as `1:, ::2`)."""
    text: str

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class Input:
    name: str
    kind: str = "tensor"          # "tensor" | "alias" (a view of another input) | "scalar" (a Python number)
    dtype: str = "float32"
    shape: tuple = ()             # the base tensor's shape; `layout` applies to it
    values: tuple = ()            # flat, row-major, len == prod(shape)
    layout: str = ""              # source suffix: "", ".t()", "[1:, ::2]", ".expand(3, 4)", ".permute(1, 0)"
    of: str | None = None         # "alias": the input it views
    value: float | int | None = None  # "scalar"

    def source(self) -> str:
        if self.kind == "scalar":
            return f"{self.name} = {lit(self.value)}"
        if self.kind == "alias":
            return f"{self.name} = {self.of}{self.layout}"
        shape = ", ".join(str(d) for d in self.shape) or "()"
        return (f"{self.name} = torch.tensor({lit(list(self.values))}, dtype=torch.{self.dtype})"
                f".reshape({shape}){self.layout}")


@dataclass(frozen=True)
class Stmt:
    op: str                       # a key of ops.OPS
    args: tuple                   # operands and parameters, by template field name
    outs: tuple = ()              # names assigned (empty: a statement such as an in-place op)

    @property
    def params(self) -> dict:
        return dict(self.args)

    def uses(self) -> set[str]:
        return {v.name for _, v in self.args if isinstance(v, Var)}


class _Formatter(string.Formatter):
    def format_field(self, value, format_spec):
        return lit(value)


FORMATTER = _Formatter()


@dataclass(frozen=True)
class Program:
    seed: int
    inputs: tuple[Input, ...]
    body: tuple[Stmt, ...]
    outputs: tuple[str, ...]

    def replace(self, **changes) -> "Program":
        return dataclasses.replace(self, **changes)

    def statement_source(self, stmt: Stmt) -> str:
        from .ops import OPS

        text = FORMATTER.format(OPS[stmt.op].template, **stmt.params)
        return f"{', '.join(stmt.outs)} = {text}" if stmt.outs else text

    def source(self) -> str:
        """The program as a module: `make_inputs()` and `fn(...)`."""
        names = [i.name for i in self.inputs]
        made = "\n".join(f"    {i.source()}" for i in self.inputs)
        body = "\n".join(f"    {self.statement_source(s)}" for s in self.body) or "    pass"
        outs = ", ".join(self.outputs) + ("," if len(self.outputs) == 1 else "")
        return (f"import torch\n\ninf, nan = float('inf'), float('nan')\n\n\n"
                f"def make_inputs():\n{made}\n    return [{', '.join(names)}]\n\n\n"
                f"def fn({', '.join(names)}):\n{body}\n    return ({outs})\n")

    def to_json(self) -> dict:
        return {"seed": self.seed, "source": self.source()}


def numel(shape) -> int:
    return math.prod(shape)


def namespace(source: str, filename: str) -> dict:
    """Run a program's module source; registers it with linecache so warnings and tracebacks show lines."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {"__name__": "kiln_fuzz_program", "__file__": filename}
    exec(compile(source, filename, "exec"), ns)
    return ns


def run_statements(program: Program, upto: int | None = None) -> tuple[dict, BaseException | None, int]:
    """Build the inputs and run the body statement by statement (eagerly, on real tensors).
    Returns the variables, the exception that stopped it (or None) and the index it stopped at."""
    env: dict = {"torch": torch, "inf": math.inf, "nan": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager's own warnings (var() with no degrees of freedom, ...)
        return _run_statements(program, env, upto)


def _run_statements(program, env, upto):
    try:
        for i in program.inputs:
            exec(i.source(), env)
    except Exception as e:  # noqa: BLE001  (an input the shrinker made invalid)
        return env, e, -1
    body = program.body if upto is None else program.body[:upto]
    for k, stmt in enumerate(body):
        try:
            exec(program.statement_source(stmt), env)
        except Exception as e:  # noqa: BLE001  (eager's own error: the program raises here)
            return env, e, k
    return env, None, len(body)


def used_names(program: Program) -> set[str]:
    names = set(program.outputs)
    for s in program.body:
        names |= s.uses()
    names |= {i.of for i in program.inputs if i.kind == "alias"}
    return names


def aliasing_variant_source(inputs: list) -> str | None:
    """Source of `make_inputs_variant()`: the inputs with other memory sharing, to check a compiled
    function's guards on a third call. Aliased inputs become separate copies; otherwise an input
    with the same shape, dtype and strides as an earlier one becomes that very tensor. None when
    neither applies."""
    tensors = [(i, t) for i, t in enumerate(inputs) if isinstance(t, torch.Tensor)]
    storage = {i: t.untyped_storage().data_ptr() for i, t in tensors if t.untyped_storage().nbytes()}
    if len(set(storage.values())) < len(storage):
        return ("def make_inputs_variant():  # the same inputs, none sharing memory\n"
                "    return [t.clone() if isinstance(t, torch.Tensor) else t for t in make_inputs()]\n")
    for k, (j, b) in enumerate(tensors):
        for i, a in tensors[:k]:
            if (a.shape, a.dtype, a.stride()) == (b.shape, b.dtype, b.stride()):
                return (f"def make_inputs_variant():  # input {j} is input {i}\n"
                        f"    inputs = make_inputs()\n    inputs[{j}] = inputs[{i}]\n    return inputs\n")
    return None


def upcast_source(source: str) -> str:
    """The program with its float inputs made float64 (make_inputs only): the reference run."""
    head, sep, rest = source.partition("\ndef fn(")
    head = re.sub(r"dtype=torch\.(?:float32|float16|bfloat16)\)", "dtype=torch.float64)", head)
    return head + sep + rest


def without_dead_statements(source: str) -> str | None:
    """The program with every assignment whose names nothing reads removed (backwards, until none
    is left), or None when there is none. In-place statements (`x.add_(y)`, `x += y`) and any
    assignment that calls an in-place method are kept: they have effects. Kiln, as TorchInductor,
    drops dead ops, and with them the errors eager would raise in them (a documented decision)."""
    tree = ast.parse(source)
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "fn")
    body, removed = list(fn.body), False
    while True:
        read = set()
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    read.add(node.id)
        dead = [stmt for stmt in body if isinstance(stmt, ast.Assign) and not _mutates(stmt.value)
                and not {n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)} & read]
        if not dead:
            break
        body, removed = [stmt for stmt in body if stmt not in dead], True
    if not removed:
        return None
    fn.body = body
    return ast.unparse(tree)


def _mutates(expr: ast.expr) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_")
               and not node.func.attr.startswith("_") for node in ast.walk(expr))
