"""Symbolic values the interpreter works with. Each knows its Source, for guards."""
from .base import NULL, NullVariable, VariableTracker
from .builder import wrap_value
from .constant import ConstantVariable
from .constant_values import wrap_constant
from .containers import BaseListVariable, ListVariable, TupleVariable
from .functions import BuiltinVariable, UserFunctionVariable
from .nn_module import NNModuleVariable
from .tensor import TensorMethodVariable, TensorVariable
from .torch import ModuleVariable, TorchFunctionVariable
from .user_objects import PythonTypeVariable

__all__ = ["NULL", "NullVariable", "VariableTracker", "PythonTypeVariable", "wrap_value",
           "ConstantVariable", "wrap_constant", "BaseListVariable", "ListVariable", "TupleVariable", "BuiltinVariable",
           "UserFunctionVariable", "NNModuleVariable", "TensorMethodVariable", "TensorVariable",
           "ModuleVariable", "TorchFunctionVariable"]
