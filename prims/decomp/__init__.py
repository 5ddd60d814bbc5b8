"""ATen -> prims decompositions; importing this package fills the registry."""
from . import activation_grads, activations, backward, complex, complex_math, complex_views, creation, elementwise, extern, linalg, math, movement, random, reductions, views  # noqa: F401
from .registry import DECOMPOSITIONS, call_aten, register  # noqa: F401
