"""C++ backend: render fused kernels to one source file, build it with g++, call through ctypes."""
from .backend import CppBackend  # noqa: F401
