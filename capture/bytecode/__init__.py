"""Version-specific bytecode handling: decode code objects into normalised Instructions."""
from .decode import BINARY_OPERATORS, DecodedCode, ExceptionTableEntry, Instruction, decode, disassemble

__all__ = ["BINARY_OPERATORS", "DecodedCode", "ExceptionTableEntry", "Instruction", "decode", "disassemble"]
