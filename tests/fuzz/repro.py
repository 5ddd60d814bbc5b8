"""A shrunk failure as a self-contained script: the program, then a harness that runs it eagerly
and through Kiln and prints both results (outputs and inputs after the call, or the exception)."""
from __future__ import annotations

from .program import Program

_COMPILE = {"dynamo": "torch.compile(fn, backend=\"kiln\")", "capture": "kiln.compile(fn)"}

_HARNESS = '''

if __name__ == "__main__":
    import kiln

    kiln.config.target = "{target}"
    compiled = {compile}
    for name, f in (("eager", fn), ("kiln", compiled)):
        inputs = make_inputs()
        try:
            out = f(*inputs)
        except Exception as e:
            print(f"{{name}}: raises {{type(e).__name__}}: {{e}}")
        else:
            print(f"{{name}}: {{out}}\\n  inputs after the call: {{inputs}}")
'''


def repro_script(program: Program, entry: str, target: str, result: dict) -> str:
    head = (f"# Kiln fuzz repro: seed {program.seed}, entry {entry}, target {target}\n"
            f"# {result['class']} ({result.get('kind', '')}): {result.get('detail', '')[:300]}\n")
    if target == "triton":
        head += "import os\n\nos.environ.setdefault(\"TRITON_INTERPRET\", \"1\")  # no GPU: Triton's interpreter\n"
    return head + program.source() + _HARNESS.format(target=target, compile=_COMPILE[entry])
