"""Lifted float scalars: a float that varies between calls stays a tensor the kernels read.

TorchDynamo passes a Python float argument whose value changed (and a module's float attribute
under dynamic=True) as a 0-dim float64 graph input `L_s_`, read back in the graph by
`item = l_s_.item()`; Kiln's capture does the same. Tracing `.item()` at its value would bake the
value into the kernels and recompile per value. Instead the trace gives `.item()` a symbolic float
(an unbacked SymFloat of a private ShapeEnv) bound to that 0-dim tensor, and each op the symbol
reaches is recorded with the tensor in its place:

- a number in a Tensor argument (`mul.Tensor(x, s)`, a wrapped number) becomes the 0-dim tensor,
  cast to the dtype the number computes in (the op's result dtype, float32 for a float16/bfloat16
  op on dimensioned tensors, as eager's opmath);
- a number in a Scalar argument selects the op's Tensor overload (`clamp` -> `clamp.Tensor`,
  `where.ScalarOther` -> `where.self`, `scalar_tensor` -> `_to_copy`); `alpha=s` multiplies first;
- Python arithmetic on the symbol in the graph (`s * 2`, an fx `operator.mul` node) runs on the
  float64 tensor, as Python computes it in double.

The rewritten op must give the dtype and shape the original gives (checked on fakes). Anything
else that meets the symbol (a Python branch on it, an op without a Tensor overload, a symbol as a
graph output) raises ScalarNotLifted: the graph is traced again with the value read and guarded.
"""
from __future__ import annotations

import operator

import torch
from torch.fx.experimental.symbolic_shapes import ShapeEnv
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten


class ScalarNotLifted(Exception):
    """A lifted float met a use that needs its value: trace again with the value."""


# op with a Scalar argument -> its overload that takes the same argument as a Tensor
TENSOR_OVERLOADS = {
    aten.add.Scalar: aten.add.Tensor, aten.sub.Scalar: aten.sub.Tensor, aten.mul.Scalar: aten.mul.Tensor,
    aten.div.Scalar: aten.div.Tensor, aten.rsub.Scalar: aten.rsub.Tensor,
    aten.remainder.Scalar: aten.remainder.Tensor, aten.fmod.Scalar: aten.fmod.Tensor,
    aten.pow.Tensor_Scalar: aten.pow.Tensor_Tensor, aten.pow.Scalar: aten.pow.Tensor_Tensor,
    aten.clamp.default: aten.clamp.Tensor, aten.clamp_min.default: aten.clamp_min.Tensor,
    aten.clamp_max.default: aten.clamp_max.Tensor,
    aten.eq.Scalar: aten.eq.Tensor, aten.ne.Scalar: aten.ne.Tensor, aten.lt.Scalar: aten.lt.Tensor,
    aten.le.Scalar: aten.le.Tensor, aten.gt.Scalar: aten.gt.Tensor, aten.ge.Scalar: aten.ge.Tensor,
    aten.where.ScalarOther: aten.where.self, aten.where.ScalarSelf: aten.where.self,
    aten.where.Scalar: aten.where.self,
    aten.masked_fill.Scalar: aten.masked_fill.Tensor, aten.fill.Scalar: aten.fill.Tensor,
    aten.lerp.Scalar: aten.lerp.Tensor,
    aten.add_.Scalar: aten.add_.Tensor, aten.sub_.Scalar: aten.sub_.Tensor, aten.mul_.Scalar: aten.mul_.Tensor,
    aten.div_.Scalar: aten.div_.Tensor, aten.pow_.Scalar: aten.pow_.Tensor, aten.clamp_.default: aten.clamp_.Tensor,
    aten.masked_fill_.Scalar: aten.masked_fill_.Tensor, aten.fill_.Scalar: aten.fill_.Tensor,
}

# ops whose `alpha` scales an operand before it is added: which operand
ALPHA_OPS = {aten.add.Tensor: "other", aten.sub.Tensor: "other", aten.rsub.Tensor: "self",
             aten.add_.Tensor: "other", aten.sub_.Tensor: "other"}

# Python arithmetic on a lifted float (fx call_function targets) -> the ATen op on float64 tensors
PYTHON_ARITHMETIC = {
    operator.add: aten.add.Tensor, operator.sub: aten.sub.Tensor, operator.mul: aten.mul.Tensor,
    operator.truediv: aten.div.Tensor, operator.neg: aten.neg.default, operator.abs: aten.abs.default,
}

_REDUCED = (torch.float16, torch.bfloat16)
# ops whose CPU kernels read a number operand unrounded (at float32) beside float16/bfloat16
# tensors; the others (add, sub, pow, ...) round it to the tensor's dtype first, as measured in eager
OPMATH_NUMBER_OPS = {aten.mul.Tensor, aten.div.Tensor, aten.lerp.Tensor}


class LiftedScalars:
    """The 0-dim floating inputs whose `.item()` is lifted, and the tensor each symbol stands for.
    Ops made here go into the graph through `record(func, args, kwargs)`: the recorder's own
    dispatch inside an op, a plain call (the recorder mode is active) between fx nodes."""

    def __init__(self, inputs):
        self.inputs = {id(f): f for f in inputs if isinstance(f, torch.Tensor) and f.dim() == 0
                       and (f.dtype.is_floating_point)}
        self.shape_env = ShapeEnv()
        self.tensors: dict = {}  # sympy symbol -> fake tensor it stands for
        self.used = False

    @staticmethod
    def of(fakes) -> "LiftedScalars | None":
        """The lifted floats of a trace over `fakes`, or None when no input is a 0-dim float."""
        scalars = LiftedScalars(fakes)
        return scalars if scalars.inputs else None

    def is_lifted_input(self, fake) -> bool:
        return id(fake) in self.inputs

    def symbol_for(self, tensor) -> torch.SymFloat:
        self.used = True
        symbol = self.shape_env.create_unbacked_symfloat()
        self.tensors[symbol.node.expr] = tensor
        return symbol

    def tensor_of(self, value):
        """The tensor a lifted symbol stands for; ScalarNotLifted for any other symbolic float."""
        tensor = self.tensors.get(value.node.expr)
        if tensor is None:
            raise ScalarNotLifted(f"an expression of lifted floats ({value}) reached an op")
        return tensor

    def has_lifted(self, args, kwargs) -> bool:
        """Whether a lifted float is among the arguments (no walk before the first `.item()`: every
        op of the trace asks)."""
        return self.used and any(isinstance(x, torch.SymFloat) for x in tree_flatten((args, kwargs))[0])

    # -- Python arithmetic in the graph --
    def arithmetic(self, target, args):
        """`s * 2` on lifted floats, computed on float64 tensors: a new lifted symbol."""
        op = PYTHON_ARITHMETIC.get(target)
        if op is None or any(isinstance(a, (torch.SymInt, torch.SymBool)) for a in args):
            raise ScalarNotLifted(f"{getattr(target, '__name__', target)} on a lifted float")
        if target is operator.truediv and (isinstance(args[1], torch.SymFloat) or args[1] == 0):
            raise ScalarNotLifted("a division by a lifted float (Python raises for 0; a tensor gives inf)")
        operands = [self._cast(a, torch.float64, _call) if isinstance(a, torch.SymFloat) else a for a in args]
        if not isinstance(operands[0], torch.Tensor):  # `2 * s`: the number in a Tensor argument
            operands[0] = torch.scalar_tensor(operands[0], dtype=torch.float64)
        return self.symbol_for(op(*operands))

    # -- ATen ops that receive a lifted float --
    def run(self, func, args, kwargs, record):
        """The op's result, with every lifted float replaced by its tensor (recorded ops)."""
        schema = func._schema.arguments
        named = {a.name: v for a, v in zip(schema, args)}
        named.update(kwargs)
        symbols = {name: v for name, v in named.items() if isinstance(v, torch.SymFloat)}
        if not symbols or any(not isinstance(v, torch.SymFloat) and _has_symbolic_float(v) for v in named.values()):
            raise ScalarNotLifted(f"a lifted float inside a list argument of {func}")
        if func is aten.scalar_tensor.default:
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            return record(aten._to_copy.default, (self._cast(symbols["s"], dtype, record),), {"dtype": dtype})
        kinds = {a.name: a.type for a in schema}
        new_func = func
        if any(not isinstance(kinds[name], torch.TensorType) for name in symbols if name != "alpha"):
            new_func = TENSOR_OVERLOADS.get(func)
        if new_func is None or any(isinstance(kinds[name], torch.FloatType) for name in symbols) or (
                "alpha" in symbols and func not in ALPHA_OPS):
            raise ScalarNotLifted(f"{func} takes a lifted float where it has no Tensor overload")
        expected = self._expected(func, named)
        dtype, widen = self._compute_dtype(new_func, named, expected)
        if widen:  # float16/bfloat16: computed in float32 with the float unrounded, as eager's opmath
            named = {name: (record(aten._to_copy.default, (v,), {"dtype": torch.float32})
                            if isinstance(v, torch.Tensor) and v.dtype == expected.dtype else v)
                     for name, v in named.items()}
        for name, value in symbols.items():
            named[name] = self._cast(value, dtype, record)
        if "alpha" in symbols:
            scaled = ALPHA_OPS[func]
            named[scaled] = record(aten.mul.Tensor, (named[scaled], named.pop("alpha")), {})
        new_schema = new_func._schema.arguments
        positional = tuple(named[a.name] for a in new_schema if not a.kwarg_only and a.name in named)
        new_kwargs = {a.name: named[a.name] for a in new_schema if a.kwarg_only and a.name in named}
        if expected is not None:
            got = new_func(*positional, **new_kwargs)  # on fakes, not recorded: the result type must hold
            if not _same_result(expected, got, torch.float32 if widen else None):
                raise ScalarNotLifted(f"{func} with a lifted float gives another result type")
        result = record(new_func, positional, new_kwargs)
        if widen:
            result = record(aten._to_copy.default, (result,), {"dtype": expected.dtype})
        return result

    def _expected(self, func, named):
        """The op's result on fakes with the number 1.0 for every lifted float (not recorded)."""
        if _in_place(func):
            return None
        stand_in = {name: (1.0 if isinstance(v, torch.SymFloat) else v) for name, v in named.items()}
        schema = func._schema.arguments
        positional = tuple(stand_in[a.name] for a in schema if not a.kwarg_only and a.name in stand_in)
        kwargs = {a.name: stand_in[a.name] for a in schema if a.kwarg_only and a.name in stand_in}
        return func(*positional, **kwargs)

    def _compute_dtype(self, func, named, expected):
        """(the dtype the float takes, whether float16/bfloat16 operands widen to float32)."""
        tensors = [v for v in named.values() if isinstance(v, torch.Tensor)]
        out = named.get("self") if _in_place(func) else expected
        dtype = out.dtype if isinstance(out, torch.Tensor) else None
        if dtype is None or not (dtype.is_floating_point or dtype.is_complex):
            first = next((t for t in tensors if t.dtype != torch.bool), tensors[0] if tensors else None)
            dtype = torch.result_type(first, 1.0) if first is not None else torch.get_default_dtype()
        widen = dtype in _REDUCED and func in OPMATH_NUMBER_OPS and isinstance(expected, torch.Tensor) and \
            expected.dtype == dtype
        return (torch.float32, True) if widen else (dtype, False)

    def _cast(self, value, dtype, record):
        tensor = self.tensor_of(value)
        if tensor.dtype == dtype:
            return tensor
        return record(aten._to_copy.default, (tensor,), {"dtype": dtype})


def _call(func, args, kwargs):
    return func(*args, **kwargs)


def _in_place(func) -> bool:
    return func._schema.name.endswith("_")


def _has_symbolic_float(value) -> bool:
    return any(isinstance(x, torch.SymFloat) for x in tree_flatten(value)[0])


def _same_result(expected, got, widened) -> bool:
    """`got` has `expected`'s type and shape (dtype `widened` when the op was widened)."""
    if not isinstance(expected, torch.Tensor) or not isinstance(got, torch.Tensor):
        return False
    return got.dtype == (widened or expected.dtype) and got.shape == expected.shape

