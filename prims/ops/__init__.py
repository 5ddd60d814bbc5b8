"""Kiln's prims, one module per category; importing this package registers them all."""
from . import elementwise, reduction, shape, convert, movement, random, extern  # noqa: F401
