"""Shrink a failing program to a small one that fails the same way (delta debugging).

A candidate is kept when the worker gives it the same signature (class and kind, and for an
exception its type) as the original. Passes, repeated until none makes progress or the budget
is spent: drop outputs; drop statements in chunks (halves, then quarters, ..., then one at a
time), rewiring uses of a dropped result to the dropped statement's operand; drop unused inputs;
turn inputs into plain contiguous tensors; shrink their dims; make their values simple (chunks
of values set to 0 or 1, then the rest rounded). Before asking the worker, each candidate is run
eagerly here: one that now raises where the original did not (or the other way) is skipped.
"""
from __future__ import annotations

import re
import time
from typing import Callable

import torch

from .program import Input, Program, Stmt, Var, run_statements, used_names


def signature(result: dict) -> tuple:
    """What must stay the same while shrinking: class, kind, and for exceptions the type and the
    start of the message (numbers blanked), so that shrinking cannot drift to another bug."""
    detail = result.get("detail", "")
    error = re.sub(r"\d+", "N", detail.split("raised ", 1)[1][:60]) if "raised " in detail else ""
    return result["class"], result.get("kind", ""), error


class Shrinker:
    def __init__(self, program: Program, run: Callable[[Program], dict], *, budget_s: float = 300,
                 max_tries: int = 250):
        self.best = program
        self.run = run
        self.deadline = time.monotonic() + budget_s
        self.tries_left = max_tries
        self.tries = 0
        self.target = signature(run(program))
        self.eager_error = _error_type(program)

    def out_of_budget(self) -> bool:
        return self.tries_left <= 0 or time.monotonic() > self.deadline

    def attempt(self, candidate: Program | None) -> bool:
        if candidate is None or candidate == self.best or self.out_of_budget():
            return False
        if _error_type(candidate) != self.eager_error:
            return False
        self.tries_left -= 1
        self.tries += 1
        if signature(self.run(candidate)) == self.target:
            self.best = candidate
            return True
        return False

    def shrink(self) -> Program:
        if self.target[0] not in ("WRONG", "CRASH", "DEAD"):
            return self.best
        passes = (self.drop_outputs, self.drop_statements, self.drop_inputs, self.plain_inputs, self.shrink_dims,
                  self.simplify_values)
        progress = True
        while progress and not self.out_of_budget():
            before = self.best
            for p in passes:
                p()
            progress = self.best != before
        return renumbered(self.best)

    # --- passes ------------------------------------------------------------------------------

    def drop_outputs(self) -> None:
        outs = self.best.outputs
        for o in outs:
            if len(self.best.outputs) > 1 and self.attempt(self.best.replace(outputs=(o,))):
                return
        for o in outs:
            if len(self.best.outputs) > 1:
                self.attempt(self.best.replace(outputs=tuple(x for x in self.best.outputs if x != o)))

    def drop_statements(self) -> None:
        size = max(1, len(self.best.body) // 2)
        while size >= 1 and not self.out_of_budget():
            start = len(self.best.body) - size
            while start >= 0:
                self.attempt(_without(self.best, range(start, start + size)))
                start = min(start, len(self.best.body)) - size
            size //= 2

    def drop_inputs(self) -> None:
        """Inputs the body does not read: all at once, else one at a time (an unread input can
        still matter: the third call may pass it as another input)."""
        used = used_names(self.best)
        unused = [i.name for i in self.best.inputs if i.name not in used]
        if unused and not self.attempt(self.best.replace(inputs=tuple(i for i in self.best.inputs if i.name in used))):
            for name in unused:
                self.attempt(self.best.replace(inputs=tuple(i for i in self.best.inputs if i.name != name)))

    def plain_inputs(self) -> None:
        for k, inp in enumerate(self.best.inputs):
            if inp.kind == "tensor" and inp.layout:
                self.attempt(_with_input(self.best, k, _materialized(self.best, k)))

    def shrink_dims(self) -> None:
        for k in range(len(self.best.inputs)):
            inp = self.best.inputs[k]
            if inp.kind != "tensor" or inp.layout:
                continue
            for d in range(len(inp.shape)):
                for size in (1, inp.shape[d] // 2, inp.shape[d] - 1, 0):
                    current = self.best.inputs[k]
                    if 0 <= size < current.shape[d]:
                        if (self.attempt(_with_input(self.best, k, _narrowed(current, d, size, 0)))
                                or self.attempt(_with_input(self.best, k, _narrowed(current, d, size, -1)))):
                            break

    def simplify_values(self) -> None:
        for k in range(len(self.best.inputs)):
            for simple in (0, 1):
                inp = self.best.inputs[k]
                if inp.kind != "tensor" or not inp.values:
                    break
                n = len(inp.values)
                size = n
                while size >= (1 if n <= 8 else n // 8) and not self.out_of_budget():
                    for start in range(0, n, size):
                        inp = self.best.inputs[k]
                        values = list(inp.values)
                        values[start:start + size] = [_simple(inp.dtype, simple)] * len(values[start:start + size])
                        if tuple(values) != inp.values:
                            self.attempt(_with_input(self.best, k, _replace(inp, values=tuple(values))))
                    size //= 2
            inp = self.best.inputs[k]
            if inp.kind == "tensor" and inp.dtype.startswith(("float", "bfloat")):
                rounded = tuple(float(round(v)) if v == v and abs(v) not in (float("inf"),) and abs(v) < 1e6 else v
                                for v in inp.values)
                self.attempt(_with_input(self.best, k, _replace(inp, values=rounded)))


# --- program edits ------------------------------------------------------------------------------

def _replace(inp: Input, **changes) -> Input:
    import dataclasses

    return dataclasses.replace(inp, **changes)


def _with_input(program: Program, k: int, inp: Input | None) -> Program | None:
    if inp is None:
        return None
    return program.replace(inputs=program.inputs[:k] + (inp,) + program.inputs[k + 1:])


def _without(program: Program, drop) -> Program | None:
    """The program without the statements at `drop`; a dropped result's uses read the dropped
    statement's operand `a` instead (so `y = f(x); z = g(y)` becomes `z = g(x)`)."""
    drop = set(drop)
    if not drop or max(drop) >= len(program.body):
        return None
    rename: dict[str, str] = {}
    body = []
    for k, stmt in enumerate(program.body):
        args = tuple((key, Var(rename.get(v.name, v.name)) if isinstance(v, Var) else v) for key, v in stmt.args)
        if k in drop:
            a = dict(args).get("a")
            for o in stmt.outs:
                if not isinstance(a, Var):
                    return None
                rename[o] = a.name
            continue
        body.append(Stmt(stmt.op, args, stmt.outs))
    outputs = tuple(dict.fromkeys(rename.get(o, o) for o in program.outputs))
    return program.replace(body=tuple(body), outputs=outputs)


def renumbered(program: Program) -> Program:
    """Names in order again: inputs x0, x1, ..., results v0, v1, ... (after statements were dropped)."""
    names = {i.name: f"x{k}" for k, i in enumerate(program.inputs)}
    for s in program.body:
        for o in s.outs:
            names[o] = f"v{len(names) - len(program.inputs)}"

    def arg(v):
        return Var(names[v.name]) if isinstance(v, Var) else v

    inputs = tuple(_replace(i, name=names[i.name], of=names.get(i.of, i.of)) for i in program.inputs)
    body = tuple(Stmt(s.op, tuple((k, arg(v)) for k, v in s.args), tuple(names[o] for o in s.outs))
                 for s in program.body)
    return program.replace(inputs=inputs, body=body, outputs=tuple(names[o] for o in program.outputs))


def _materialized(program: Program, k: int) -> Input | None:
    """Input k as a plain contiguous tensor with the same values (its layout dropped)."""
    env, error, _ = run_statements(program.replace(body=()))
    if error is not None:
        return None
    t = env[program.inputs[k].name]
    return _replace(program.inputs[k], shape=tuple(t.shape), values=tuple(_flat(t)), layout="")


def _narrowed(inp: Input, d: int, size: int, end: int) -> Input:
    """Input `inp` cut to `size` along dim d, keeping its first (end=0) or last (end=-1) elements."""
    t = _tensor(inp)
    t = t.narrow(d, 0 if end == 0 else t.shape[d] - size, size)
    return _replace(inp, shape=tuple(t.shape), values=tuple(_flat(t)))


def _tensor(inp: Input) -> torch.Tensor:
    env: dict = {"torch": torch, "inf": float("inf"), "nan": float("nan")}
    exec(inp.source(), env)
    return env[inp.name]


def _flat(t: torch.Tensor) -> list:
    values = t.contiguous().flatten()
    if t.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    return values.tolist()


def _simple(dtype: str, which: int):
    if dtype == "bool":
        return bool(which)
    return float(which) if dtype.startswith(("float", "bfloat")) else which


def _error_type(program: Program) -> str | None:
    _, error, _ = run_statements(program)
    return type(error).__name__ if error is not None else None
