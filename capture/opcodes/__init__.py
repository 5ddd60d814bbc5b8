"""Opcode handlers beyond the interpreter's core, one module per concern. Each registers
`(tx, inst)` functions in the interpreter's table with `@handles`; importing a module
registers its handlers (interpreter.py imports them all)."""
