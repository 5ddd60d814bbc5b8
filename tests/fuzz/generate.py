"""The program generator: a seed in, a straight-line program out.

It builds the program one statement at a time and runs each one eagerly on the real inputs as it
goes, so every shape, dtype and view it chooses from is the real one; a statement eager rejects
is dropped (or, rarely, kept as the program's last statement: then the program must raise).
Operands are existing values (recent ones preferred) or new inputs with the shape the op needs.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from .ops import DTYPE_RULES, FAMILY_WEIGHTS, OPS
from .program import Input, Program, Stmt, Var, numel, run_statements
from .values import DTYPES, index_values, tensor_values

# how often each dtype is picked for a program's main dtype and for new operands
DTYPE_WEIGHTS = {"float32": 10, "float64": 3, "int64": 4, "int32": 3, "bool": 1, "float16": 1.5, "bfloat16": 1.5}
CONSTANTS = (0, 1, 2, -1, 3, -2, 7, 0.5, -0.5, 2.5, -1.5, 0.0, -0.0, 1e30, -1e-30, 1e-45, math.inf, -math.inf,
             math.nan, 2**31, True, False)
# constants equal under == but not the same constant: a program gets one such group now and then
TWINS = ((0.0, -0.0), (1, 1.0, True), (0, 0.0, False), (2, 2.0), (-1, -1.0), (math.inf, 1e30))
CONSTANT_RULES = {
    "any": lambda c: True,
    "num": lambda c: not isinstance(c, bool),
    "float": lambda c: isinstance(c, float),
    "int": lambda c: type(c) is int,
    "intbool": lambda c: isinstance(c, int),
    "bool": lambda c: isinstance(c, bool),
}


@dataclass(frozen=True)
class Settings:
    max_ops: int = 12
    max_numel: int = 48
    special: float = 0.12          # chance that an input element is a special value (per tensor with specials)
    keep_raising: float = 0.03     # chance to keep a statement eager rejects (the program then raises)


def generate(seed: int, settings: Settings = Settings()) -> Program:
    return Gen(seed, settings).program()


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _broadcastable(s1, s2) -> bool:
    return all(a == b or a == 1 or b == 1 for a, b in zip(reversed(s1), reversed(s2)))


def _broadcasts_to(src, dst) -> bool:
    return len(src) <= len(dst) and all(a == b or a == 1 for a, b in zip(reversed(src), reversed(dst)))


class Gen:
    """The generator's state; op-table parameter builders call its methods (`g.partner(a)`, ...)."""

    def __init__(self, seed: int, settings: Settings):
        self.seed, self.settings = seed, settings
        self.rng = random.Random(seed)
        self.inputs: list[Input] = []
        self.body: list[Stmt] = []
        self.env: dict = {}
        self.n_vars = 0
        self.main = self._weighted(DTYPE_WEIGHTS)
        self.raised = False
        self.reduce_again: Var | None = None
        # the program's own few constants, so that several statements share (or nearly share) them
        self.constants = self.rng.sample(CONSTANTS, 5) + (list(self.rng.choice(TWINS)) if self.rng.random() < 0.3 else [])

    # --- the program -------------------------------------------------------------------------

    def program(self) -> Program:
        rng = self.rng
        base = self.shape()
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            shape = base if rng.random() < 0.6 else self.broadcast_variant(base, grow=False)
            self.new_input(shape, self.main if rng.random() < 0.8 else self._weighted(DTYPE_WEIGHTS))
        if rng.random() < 0.08:
            self._alias_input()
        if rng.random() < 0.08:
            self._scalar_input()
        n_ops = min(self.settings.max_ops, rng.choice((1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12)))
        for _ in range(n_ops):
            if not self.add_statement() or self.raised:
                break
        return Program(self.seed, tuple(self.inputs), tuple(self.body), self.outputs())

    def outputs(self) -> tuple[str, ...]:
        made = [o for s in self.body for o in s.outs]
        mutated = [s.params["a"].name for s in self.body if not s.outs]
        last = self.body[-1] if self.body else None
        chosen = list(last.outs) if last is not None and last.outs else mutated[-1:]
        pool = made + mutated + [i.name for i in self.inputs if i.kind != "scalar"]
        for _ in range(self.rng.choice((0, 0, 1, 1, 2))):
            name = self.rng.choice(pool)
            if name in chosen:
                continue
            if name.startswith("x") and self.rng.random() < 0.6:
                continue  # returning an input as it is: now and then
            chosen.append(name)
        if not chosen:
            chosen = [self.inputs[0].name]
        return tuple(chosen)

    def add_statement(self, only=None) -> bool:
        """Add one statement that eager accepts (`only`: of that OpSpec); False after 40 tries."""
        for _ in range(40):
            if only is not None:
                spec = only
            else:
                family = self._weighted(FAMILY_WEIGHTS) if self.reduce_again is None else "reduction"
                specs = [s for s in OPS.values() if s.family == family]
                spec = self.rng.choices(specs, [s.weight for s in specs])[0]
            a = self.reduce_again if self.reduce_again is not None and not spec.nullary else self._operand(spec)
            self.reduce_again = None
            if a is None and not spec.nullary:
                continue
            if a is not None and (self._dtype_of_var(a) not in DTYPE_RULES[spec.dtypes]
                                  or self.env[a.name].dim() < spec.min_ndim):
                continue
            mark = len(self.inputs)
            try:
                params = spec.params(self, self.env[a.name] if a is not None else None)
            except (ValueError, IndexError, RuntimeError):
                params = None
            if params is not None:
                outs = tuple(self._name() for _ in range(spec.outs))
                stmt = Stmt(spec.name, ((("a", a),) if a is not None else ()) + tuple(params.items()), outs)
                if self._try(stmt):
                    if spec.family == "reduction" and self.rng.random() < 0.35:
                        self.reduce_again = a  # several reductions over different dims of one value
                    return True
            del self.inputs[mark:]
            self._rebuild()
        return False

    def _try(self, stmt: Stmt) -> bool:
        self.body.append(stmt)
        program = Program(self.seed, tuple(self.inputs), tuple(self.body), ())
        env, error, _ = run_statements(program)
        if error is None:
            self.env = env
            return True
        if self.rng.random() < self.settings.keep_raising * (20 if _data_dependent(error) else 1):
            self.raised = True  # kept: the program ends in eager's error, and Kiln must raise it too
            return True
        self.body.pop()
        return False

    def _rebuild(self) -> None:
        self.env, _, _ = run_statements(Program(self.seed, tuple(self.inputs), tuple(self.body), ()))

    def _name(self) -> str:
        self.n_vars += 1
        return f"v{self.n_vars - 1}"

    # --- operands ----------------------------------------------------------------------------

    def _tensor_vars(self) -> list[Var]:
        names = [i.name for i in self.inputs if i.kind != "scalar"] + [o for s in self.body for o in s.outs]
        return [Var(n) for n in names if isinstance(self.env.get(n), torch.Tensor)]

    def _input_rooted(self, v: Var) -> bool:
        """Whether v is an input or a view of one (so an in-place op on it writes the caller's data)."""
        t = self.env[v.name]
        ptr = t.untyped_storage().data_ptr()
        return any(isinstance(self.env.get(i.name), torch.Tensor) and i.kind != "scalar"
                   and self.env[i.name].untyped_storage().data_ptr() == ptr for i in self.inputs) and ptr != 0

    def _operand(self, spec) -> Var | None:
        rule = DTYPE_RULES[spec.dtypes]
        cands = [v for v in self._tensor_vars() if self._dtype_of_var(v) in rule and self.env[v.name].dim()
                 >= spec.min_ndim]
        if spec.on_inputs and self.rng.random() < 0.85:
            cands = [v for v in cands if self._input_rooted(v)]
        if not cands:
            return None
        return self.rng.choices(cands, [1 + k for k in range(len(cands))])[0]  # recent values more often

    def _dtype_of_var(self, v: Var) -> str:
        return dtype_name(self.env[v.name])

    def dtype_of(self, t: torch.Tensor) -> str:
        return dtype_name(t)

    def dtype(self, rule: str = "any") -> torch.dtype:
        names = DTYPE_RULES[rule]
        return DTYPES[self._weighted({n: DTYPE_WEIGHTS[n] for n in names})]

    def copy_rule(self, a: torch.Tensor) -> str:
        return "intbool" if not a.dtype.is_floating_point else "any"  # float into int: undefined when out of range

    def partner(self, a: torch.Tensor, rule: str = "any", *, into: bool = False) -> Var:
        """A tensor operand whose shape broadcasts with a's (`into`: broadcasts to a's shape)."""
        names = DTYPE_RULES[rule]
        fits = _broadcasts_to if into else _broadcastable
        cands = [v for v in self._tensor_vars() if self._dtype_of_var(v) in names
                 and fits(tuple(self.env[v.name].shape), tuple(a.shape))]
        if cands and self.rng.random() < 0.5:
            return self.rng.choice(cands)
        shape = self.broadcast_variant(tuple(a.shape), grow=not into)
        own = dtype_name(a)
        dtype = own if own in names and self.rng.random() < 0.7 else self._weighted({n: DTYPE_WEIGHTS[n] for n in names})
        return self.new_input(shape, dtype)

    def same_shape(self, a: torch.Tensor, shape: tuple) -> Var:
        cands = [v for v in self._tensor_vars() if tuple(self.env[v.name].shape) == shape]
        if cands and self.rng.random() < 0.4:
            return self.rng.choice(cands)
        return self.new_input(shape, dtype_name(a) if self.rng.random() < 0.8 else self._weighted(DTYPE_WEIGHTS))

    def scalar(self, rule: str = "any", tensors: bool = True):
        """A Python number: a constant, or (tensors=True) sometimes one read from a tensor earlier."""
        numbers = [Var(n) for n, v in self.env.items() if n[0] in "vx" and type(v) in (int, float)
                   and (rule != "int" or type(v) is int)] if tensors else []
        if numbers and self.rng.random() < 0.4:
            return self.rng.choice(numbers)
        fits = CONSTANT_RULES[rule]
        pool = [c for c in self.constants if fits(c)]
        return self.rng.choice(pool if pool and self.rng.random() < 0.8 else [c for c in CONSTANTS if fits(c)])

    # --- inputs ------------------------------------------------------------------------------

    def new_input(self, shape: tuple, dtype: str, values: list | None = None, layout: bool = True) -> Var:
        rng = self.rng
        base, suffix = tuple(shape), ""
        kind = rng.choices(("contiguous", "transposed", "strided", "expanded", "offset"), (12, 3, 2, 2, 1))[0]
        if not layout or values is not None or not shape:
            kind = "contiguous"
        if kind == "transposed" and len(shape) >= 2:
            perm = list(range(len(shape)))
            while perm == sorted(perm):
                rng.shuffle(perm)
            base = tuple(shape[p] for p in perm)
            suffix = f".permute{tuple(perm.index(d) for d in range(len(shape)))}"
        elif kind == "strided":
            d = rng.randrange(len(shape))
            start = rng.choice((0, 1))
            base = shape[:d] + (2 * shape[d] + start,) + shape[d + 1:]
            suffix = "[" + ":, " * d + f"{start}::2]"
        elif kind == "expanded" and any(s > 1 for s in shape):
            base = tuple(1 if s > 1 and rng.random() < 0.6 else s for s in shape)
            suffix = f".expand{tuple(shape)}" if base != shape else ""
        elif kind == "offset":
            base = (shape[0] + 1,) + shape[1:]
            suffix = "[1:]"
        if values is None:
            special = rng.choice((1, 1, 3)) * self.settings.special if rng.random() < 0.5 else 0.0
            values = tensor_values(rng, dtype, numel(base), special)
        name = f"x{len(self.inputs)}"
        self.inputs.append(Input(name, "tensor", dtype, base, tuple(values), suffix))
        exec(self.inputs[-1].source(), {"torch": torch, "inf": math.inf, "nan": math.nan}, self.env)
        return Var(name)

    def index(self, size: int, shape: tuple, *, negative: bool = True, unique: bool = False) -> Var:
        """An int64 input of indices into a dim of `size` (rarely one out of range)."""
        n = numel(shape)
        if size == 0 or (unique and n > size):
            shape = tuple(0 for _ in shape) or (0,)
            n = 0
        if unique:
            values = self.rng.sample(range(size), n)
            values = [v - size if negative and self.rng.random() < 0.3 else v for v in values]
        else:
            values = index_values(self.rng, size, n, out_of_range=0.03)
            if not negative:
                values = [v % size if size and 0 > v >= -size else v for v in values]
        return self.new_input(shape, "int64", values, layout=False)

    def mask(self, shape: tuple) -> Var:
        return self.new_input(shape, "bool")

    def _alias_input(self) -> None:
        """An input that is a view of another input (the caller passes aliased tensors)."""
        tensors = [i for i in self.inputs if i.kind == "tensor"]
        src = self.rng.choice(tensors)
        t = self.env[src.name]
        choices = [""] + ([".t()"] if t.dim() == 2 else []) + (["[1:]", "[::2]"] if t.dim() >= 1 else [])
        name = f"x{len(self.inputs)}"
        self.inputs.append(Input(name, "alias", src.dtype, of=src.name, layout=self.rng.choice(choices)))
        self._rebuild()

    def _scalar_input(self) -> None:
        value = self.rng.choice((2, -3, 0, 1.5, -0.25, 0.0))
        self.inputs.append(Input(f"x{len(self.inputs)}", "scalar", value=value))
        self._rebuild()

    # --- shapes, dims, subscripts ------------------------------------------------------------

    def shape(self) -> tuple:
        while True:
            ndim = self.rng.choices((0, 1, 2, 3, 4), (1, 3, 4, 2, 1))[0]
            shape = tuple(self.rng.choices((0, 1, 2, 3, 4, 5, 7, 8), (1, 4, 4, 4, 3, 3, 2, 2))[0] for _ in range(ndim))
            if numel(shape) <= self.settings.max_numel:
                return shape

    def broadcast_variant(self, shape: tuple, grow: bool = True) -> tuple:
        """A shape that broadcasts with `shape` (grow=False: to `shape`, so the result keeps it)."""
        rng = self.rng
        out = tuple(1 if rng.random() < 0.25 else s for s in shape)
        if out and rng.random() < 0.2:
            out = out[rng.randint(1, len(out)):]
        if grow and rng.random() < 0.1 and numel(shape) * 2 <= self.settings.max_numel:
            out = (2,) + out
        return out

    def dim(self, t: torch.Tensor) -> int:
        n = t.dim()
        return self.rng.choice((0, -1)) if n == 0 else self.rng.randint(-n, n - 1)

    def reduce_dims(self, t: torch.Tensor, *, tuple_ok: bool = True, none_ok: bool = True, as_tuple: bool = False):
        n, r = t.dim(), self.rng.random()
        if none_ok and not as_tuple and r < 0.2:
            return None
        if n == 0:
            return (0,) if as_tuple else self.rng.choice((0, -1))
        if as_tuple or (tuple_ok and r > 0.65):
            dims = self.rng.sample(range(n), self.rng.randint(1, n))
            return tuple(d - n if self.rng.random() < 0.25 else d for d in dims)
        return self.dim(t)

    def refactor(self, shape: tuple) -> tuple:
        """Another shape with the same number of elements (for reshape/view); -1 now and then."""
        total = numel(shape)
        if total == 0:
            return self.rng.choice(((0,), (0, 3), (2, 0), tuple(shape[::-1])))
        factors, n, p = [], total, 2
        while n > 1:
            while n % p == 0:
                factors.append(p)
                n //= p
            p += 1
        self.rng.shuffle(factors)
        dims = [1] * self.rng.randint(1, 3)
        for f in factors:
            dims[self.rng.randrange(len(dims))] *= f
        if self.rng.random() < 0.2:
            dims.insert(self.rng.randint(0, len(dims)), 1)
        if self.rng.random() < 0.25:
            dims[self.rng.randrange(len(dims))] = -1
        return tuple(dims)

    def subscript(self, t: torch.Tensor, *, ints: bool) -> str:
        parts, rng = [], self.rng
        for size in t.shape[: rng.randint(1, t.dim())] if t.dim() else ():
            r = rng.random()
            if ints and size > 0 and r < 0.35:
                parts.append(str(rng.randint(-size, size - 1)))
            elif r < 0.5:
                parts.append(":")
            elif r < 0.7:
                parts.append(f"{rng.randint(-size - 1, size)}:{rng.randint(-size, size + 1)}")
            elif r < 0.85:
                parts.append(f"{rng.choice(('', '1', '-2'))}::{rng.randint(1, 3)}")
            else:
                parts.append(rng.choice((":-1", "1:", "None")))
        if not parts or rng.random() < 0.1:
            parts.append(rng.choice(("...", "None")))
        return ", ".join(parts)

    def _weighted(self, weights: dict):
        keys = list(weights)
        return self.rng.choices(keys, [weights[k] for k in keys])[0]


def _data_dependent(error: BaseException) -> bool:
    text = str(error)
    return "ZeroDivision" in text or "out of bounds" in text or "out of range" in text
