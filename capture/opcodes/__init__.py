"""Opcode handlers beyond the interpreter's core, one module per concern. Each registers
`(tx, inst)` functions in the handler table (`table.py`) with `@handles`; importing a module
registers its handlers (interpreter.py imports them all)."""
