"""Prim -> loop IR lowerings; importing this package fills LOWERINGS."""
from . import extern, movement, pointwise, random, reductions, views  # noqa: F401
from .registry import LOWERINGS  # noqa: F401
from .value import TensorValue  # noqa: F401
