"""Opcode handlers kept out of interpreter.py, one concern per module. Each is a function
`(tx, inst)` registered with `interpreter.handles`; interpreter.py imports these modules."""
