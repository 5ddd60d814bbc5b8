"""Version-specific bytecode handling: decode code objects into normalised Instructions, and
generate, verify and render new code objects (resume functions, graph-break entries).
Nothing here imports torch: it is tested on interpreters without it."""
from .decode import BINARY_OPERATORS, DecodedCode, ExceptionTableEntry, Instruction, decode, disassemble

__all__ = ["BINARY_OPERATORS", "DecodedCode", "ExceptionTableEntry", "Instruction", "decode", "disassemble"]
