"""Triton backend: the same fused kernels rendered for GPUs (and Triton's interpreter on CPU)."""
from .backend import TritonBackend  # noqa: F401
