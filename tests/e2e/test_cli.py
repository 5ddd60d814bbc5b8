"""The `kiln` command's own behaviour: --version, --help, missing scripts, explain over both entry
points, and where demo writes."""
import os
import re
import subprocess
import sys

import kiln


def _kiln(*args, cwd, **env):
    return subprocess.run([sys.executable, "-m", "kiln", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=600)


def test_version(tmp_path):
    out = _kiln("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"kiln {kiln.__version__}"


def test_help_shows_script_arguments(tmp_path):
    for command in ("dump", "explain"):
        out = _kiln(command, "--help", cwd=tmp_path)
        assert out.returncode == 0
        assert "SCRIPT.py" in out.stdout and "[-- ARGS]" in out.stdout, out.stdout


def test_missing_script_is_one_line(tmp_path):
    for command in ("dump", "explain"):
        out = _kiln(command, "nowhere.py", cwd=tmp_path)
        assert out.returncode == 2
        assert out.stderr.strip() == f"kiln {command}: no such script: nowhere.py"
        assert not list(tmp_path.iterdir())  # nothing written


def test_script_arguments_after_double_dash(tmp_path):
    (tmp_path / "s.py").write_text("import sys\nprint('args', sys.argv[1:])\n")
    out = _kiln("explain", "s.py", "--", "--steps", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "args ['--steps', '3']" in out.stdout


EXPLAIN_BOTH = """
import torch, kiln

@kiln.compile
def captured(x):
    return x.cos() * 2

def dynamo_ok(x):
    return torch.relu(x) + 1

def dynamo_refused(x):
    return (x * 2)[1:].as_strided((2, 2), (1, 2), 1)

captured(torch.randn(4))
with torch.no_grad():
    torch.compile(dynamo_ok, backend="kiln")(torch.randn(8))
torch.compile(dynamo_refused, backend="kiln")(torch.randn(4, 4))  # the back end runs this one eagerly

def dynamo_train(w, x):
    return (x @ w).sum()

w = torch.randn(4, 4, requires_grad=True)
torch.compile(dynamo_train, backend="kiln")(w, torch.randn(2, 4)).backward()  # forward + backward compiled
"""


def test_explain_sees_torch_compile_graphs_and_their_fallbacks(tmp_path):
    (tmp_path / "s.py").write_text(EXPLAIN_BOTH)
    out = _kiln("explain", "s.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert ("kiln explain: 4 graph(s) captured (3 by TorchDynamo), 1 of them ran eagerly in the back end, "
            "0 graph break(s), 0 function(s) fell back to eager") in text, text
    assert "captured (s.py:4): 1 graph, 2 ops" in text and "1 kernel(s)" in text
    assert "graphs from TorchDynamo" in text
    assert "dynamo_ok (" in text and "compiled to 1 kernel(s)" in text
    assert "dynamo_refused (" in text and "ran eagerly" in text and "as_strided" in text
    # the one warning points at the user's line that compiled the graph, not at torch's internals
    assert "dynamo_train (" in text and "forward + backward" in text
    assert "s.py:17: KilnCompileWarning" in out.stderr, out.stderr


def test_demo_writes_to_a_temp_dir_by_default(tmp_path):
    out = _kiln("demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for words in ("matches eager", "compile time", "eager:", "kiln:", "5_kernels.cpp"):
        assert words in out.stdout, out.stdout
    assert not list(tmp_path.iterdir())  # nothing in the working directory
    written = next(line for line in out.stdout.splitlines() if "were written to" in line)
    folder = written.rsplit(" ", 1)[1].rstrip(":")
    assert os.path.isdir(folder) and "kiln_demo_" in folder


PROFILED = """
import torch
model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8))
compiled = torch.compile(model, backend="kiln")
for _ in range(3):
    compiled(torch.randn(16, 32)).sum().backward()
"""


def test_profile_times_forward_and_backward_steps(tmp_path):
    (tmp_path / "s.py").write_text(PROFILED)
    out = _kiln("profile", "s.py", "--top", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("kiln profile: 2 graph(s)"), text
    assert "graph 0 (forward): 3 calls" in text and "graph 1 (backward): 3 calls" in text, text
    steps = [line for line in text.splitlines() if " graph " in line and "[" in line]
    assert len(steps) == 3 and all(re.search(r"\[(matmul|kernel|library)\]", line) for line in steps), text
    assert "more step(s)" in text  # --top 3 of more
