"""kiln.codegen: loop IR -> C++ (OpenMP) and Triton kernels, and the Python wrapper that calls them."""
if __name__ != "kiln.codegen":  # one copy of each module, one set of registries
    raise ImportError(f"Kiln's codegen stage is imported as kiln.codegen, not {__name__}")
