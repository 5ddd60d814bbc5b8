"""Kiln's own fuzzer: random straight-line tensor programs, compiled and compared with eager.

    python -m tests.fuzz --seed 0 --n 200 --entry capture --target cpp [--shrink] [--jobs 2]

generate.py makes a program from a seed (ops from the table in ops*.py), worker.py compiles and
checks it in a child process (check.py compares with eager), runner.py keeps the workers alive
and classifies deaths, shrink.py reduces a failure to a minimal repro, cli.py is the command.
"""
