"""A shrunk failure as a self-contained script: the program, then a harness that makes the same
calls as the worker up to the failing one (a second call on fresh inputs, a third on inputs that
share memory differently) and prints eager's and Kiln's results (outputs and inputs after the
call, or the exception) for each."""
from __future__ import annotations

from .program import Program, aliasing_variant_source, namespace

_COMPILE = {"dynamo": "torch.compile(fn, backend=\"kiln\")", "capture": "kiln.compile(fn)",
            "dynamo-dynamic": "torch.compile(fn, backend=\"kiln\", dynamic=True)",
            "capture-dynamic": "kiln.compile(fn, dynamic=True)"}

_HARNESS = '''

if __name__ == "__main__":
    import kiln

    kiln.config.target = "{target}"
    compiled = {compile}
    for call, make in {calls}:
        for name, f in (("eager", fn), ("kiln", compiled)):
            inputs = make()
            try:
                out = f(*inputs)
            except Exception as e:
                print(f"{{call}}, {{name}}: raises {{type(e).__name__}}: {{e}}")
            else:
                print(f"{{call}}, {{name}}: {{out}}\\n  inputs after the call: {{inputs}}")
'''


def repro_script(program: Program, entry: str, target: str, result: dict) -> str:
    detail = result.get("detail", "")
    head = (f"# Kiln fuzz repro: seed {program.seed}, entry {entry}, target {target}\n"
            f"# {result['class']} ({result.get('kind', '')}): {detail[:300]}\n")
    if target == "triton":
        head += "import os\n\nos.environ.setdefault(\"TRITON_INTERPRET\", \"1\")  # no GPU: Triton's interpreter\n"
    source = program.source()
    calls = [("'first call'", "make_inputs")]
    if detail.startswith(("second call", "third call")):
        calls.append(("'second call'", "make_inputs"))
    if detail.startswith("third call"):
        variant = aliasing_variant_source(namespace(source, "<fuzz repro>")["make_inputs"]())
        if variant is not None:
            source += "\n\n" + variant
            calls.append(("'third call, inputs aliased differently'", "make_inputs_variant"))
    listed = "(" + ", ".join(f"({c}, {m})" for c, m in calls) + ",)"
    return head + source + _HARNESS.format(target=target, compile=_COMPILE[entry], calls=listed)
