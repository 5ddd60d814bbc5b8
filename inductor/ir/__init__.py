"""The IRs below prims: index expressions, the loop-level IR and buffers."""
