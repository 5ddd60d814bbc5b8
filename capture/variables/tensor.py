"""Tensors in the graph, and their attributes and methods."""
from __future__ import annotations

import operator

import torch
import torch.fx

from ..exc import Unsupported
from ..guards import Guard
from .base import VariableTracker
from .constant import ConstantVariable
from .constant_values import wrap_constant
from .containers import TupleVariable

# Attributes answered from the (static, guarded) metadata: they become constants. is_nested is
# fixed by an input's guards (a strided nested tensor fails SIZE: its .shape raises; a jagged one
# fails TYPE_MATCH), is_quantized by DTYPE, is_cuda & co by DEVICE.
METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "requires_grad", "is_cuda",
                                 "layout", "is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "itemsize",
                                 "is_nested", "is_mkldnn", "is_xpu", "is_mps", "is_cpu"})
# Sparse COO and mkldnn tensors have strides, so STRIDE does not rule them out: reading one of
# these on an input adds a LAYOUT guard.
LAYOUT_ATTRIBUTES = frozenset({"layout", "is_sparse", "is_sparse_csr", "is_mkldnn"})

# Methods whose result depends only on guarded metadata: evaluated on the fake tensor.
METADATA_METHODS = frozenset({"size", "stride", "dim", "ndimension", "numel", "nelement",
                              "element_size", "is_contiguous", "is_floating_point", "is_complex",
                              "get_device", "storage_offset"})
# Sizes that may be symbolic: method -> (the aten op a symbolic one is read with, whether it takes a dim).
_aten = torch.ops.aten
SIZE_METHODS = {"size": (_aten.sym_size.int, True), "stride": (_aten.sym_stride.int, True),
                "numel": (_aten.sym_numel.default, False), "nelement": (_aten.sym_numel.default, False),
                "storage_offset": (_aten.sym_storage_offset.default, False)}

# Attributes that are tensors computed from the tensor: recorded as method calls.
TENSOR_ATTRIBUTES = {"T": lambda ndim: ("permute", tuple(reversed(range(ndim)))),
                     "mT": lambda ndim: ("transpose", (-2, -1))}

# Methods that need the tensor's data or touch state outside the graph.
UNSUPPORTED_METHODS = {
    "item": "reading a tensor's value into Python (data-dependent)",
    "tolist": "reading a tensor's value into Python (data-dependent)",
    "numpy": "converting to numpy", "__bool__": "bool() of a tensor (data-dependent)",
    "backward": "calling backward()", "data_ptr": "reading data_ptr()",
    "register_hook": "registering hooks", "retain_grad": "retain_grad()",
    "untyped_storage": "storage access", "storage": "storage access",
    "set_": "in-place set_", "resize_": "resize_",
}
# In-place methods that change a tensor's metadata (shape, strides, autograd state) rather
# than its data: a graph cannot replay those on the caller's tensor.
for _name in ("resize_as_", "t_", "transpose_", "swapdims_", "swapaxes_", "squeeze_", "unsqueeze_",
              "as_strided_", "detach_", "requires_grad_", "share_memory_", "pin_memory"):
    UNSUPPORTED_METHODS[_name] = "changes the tensor's metadata in place"


class TensorVariable(VariableTracker):
    """A tensor: the fx node producing it plus a fake tensor carrying its metadata."""

    def __init__(self, node: torch.fx.Node, example, source=None):
        super().__init__(source)
        self.node = node
        self.example = example  # FakeTensor: shape, dtype, device, strides, requires_grad

    def python_type(self) -> type:
        return torch.Tensor

    def is_graph_input(self) -> bool:
        return self.node.op == "placeholder"

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name in METADATA_ATTRIBUTES:
            if name in LAYOUT_ATTRIBUTES and self.source is not None:
                tx.output.guards.add(Guard(self.source, "LAYOUT", self.example.layout, noun="tensor"))
            if name == "shape":
                return self.sizes_of(tx, "size")
            return wrap_constant(getattr(self.example, name))
        if name in TENSOR_ATTRIBUTES:
            method, args = TENSOR_ATTRIBUTES[name](self.example.dim())
            return tx.output.call_op("call_method", method, [self, *map(wrap_constant, args)], {})
        if callable(getattr(torch.Tensor, name, None)):
            return TensorMethodVariable(self, name)
        raise Unsupported(f"tensor attribute {name!r}")

    def size_of(self, tx, method: str, dim: int | None = None) -> VariableTracker:
        """`x.size(dim)`, `x.stride(dim)`, `x.numel()`...: a constant when static (OutputGraph.size_variable)."""
        target, takes_dim = SIZE_METHODS[method]
        if takes_dim:
            dim = dim % max(self.example.dim(), 1)
            value = getattr(self.example, method)(dim)
            return tx.output.size_variable(value, target, (self.node, dim))
        return tx.output.size_variable(getattr(self.example, method)(), target, (self.node,))

    def sizes_of(self, tx, method: str) -> VariableTracker:
        """`x.shape` / `x.size()` / `x.stride()`: a torch.Size constant, or a tuple of sizes."""
        values = getattr(self.example, method)()
        if not any(isinstance(value, torch.SymInt) for value in values):
            return wrap_constant(values if method == "size" else tuple(values))
        container = torch.Size if method == "size" else tuple
        return TupleVariable([self.size_of(tx, method, dim) for dim in range(len(values))], python_container=container)

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        return tx.output.call_op("call_function", operator.getitem, [self, index], {})

    def setitem(self, tx, index: VariableTracker, value: VariableTracker) -> None:
        tx.output.call_op("call_function", operator.setitem, [self, index, value], {})

    def unpack(self, tx) -> list[VariableTracker]:
        if self.example.dim() == 0:
            raise Unsupported("iterating over a 0-d tensor")
        return [self.getitem(tx, ConstantVariable(i)) for i in range(int(self.example.shape[0]))]

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.example.shape))
        return f"TensorVariable({self.node.name}: {str(self.example.dtype).removeprefix('torch.')}[{shape}])"


def is_inplace_name(name: str) -> bool:
    return name.endswith("_") and not name.endswith("__")


class TensorMethodVariable(VariableTracker):
    """`tensor.method`, waiting to be called."""

    def __init__(self, tensor: TensorVariable, name: str):
        super().__init__(None)
        self.tensor, self.name = tensor, name

    def call(self, tx, args, kwargs) -> VariableTracker:
        if self.name in UNSUPPORTED_METHODS:
            raise Unsupported(f"tensor method {self.name}(): {UNSUPPORTED_METHODS[self.name]}")
        if self.name in METADATA_METHODS:
            constant_args = [arg.as_python_constant() for arg in args]
            constant_kwargs = {key: value.as_python_constant() for key, value in kwargs.items()}
            if self.name in SIZE_METHODS and not constant_kwargs:
                if not constant_args and self.name in ("size", "stride"):
                    return self.tensor.sizes_of(tx, self.name)
                return self.tensor.size_of(tx, self.name, *constant_args)
            result = getattr(self.tensor.example, self.name)(*constant_args, **constant_kwargs)
            return wrap_constant(bool(result) if isinstance(result, torch.SymBool) else result)
        return tx.output.call_op("call_method", self.name, [self.tensor, *args], kwargs)

    def __repr__(self) -> str:
        return f"TensorMethodVariable({self.tensor.node.name}.{self.name})"


__all__ = ["TensorVariable", "TensorMethodVariable", "is_inplace_name"]
