"""The C++ build cache: keyed by source + flags + compiler, atomic, and never loads a bad entry."""
import subprocess
import sys
import textwrap

from kiln.codegen.cpp import build
from kiln import config

SCRIPT = textwrap.dedent("""
    import torch, torch.fx as fx
    from kiln.codegen.cpp import build
    from kiln.backend import compile_graph
    gm = fx.symbolic_trace(lambda x: torch.softmax(x * 3.25, -1))
    c = compile_graph(gm, [torch.randn(5, 7)], target="cpp")
    torch.testing.assert_close(c.call(torch.ones(5, 7)), torch.softmax(torch.ones(5, 7) * 3.25, -1))
    print(build.BuildStats.builds)
""")


def _run(cache_dir):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env={**__import__("os").environ, "KILN_CACHE_DIR": str(cache_dir)}, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_second_compile_in_a_new_process_does_no_build(tmp_path):
    assert _run(tmp_path) == 1
    assert _run(tmp_path) == 0


def test_corrupted_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    source = 'extern "C" int kiln_probe() { return 41 + 1; }\n'
    lib = build.build(source)
    lib.write_bytes(b"not a shared library")
    before = build.BuildStats.builds
    again = build.build(source)
    assert build.BuildStats.builds == before + 1
    assert again == lib and build._valid(lib, lib.with_suffix(".sha256"), lib.stem)


def test_key_covers_flags_and_compiler(monkeypatch):
    key = build.source_key("int x;")
    monkeypatch.setattr(build, "FLAGS", build.FLAGS + ["-DKILN_OTHER"])
    assert build.source_key("int x;") != key



def test_slow_build_step_prints_one_progress_line(capsys):
    import time

    with build._progress("kiln: building C++ kernels (x.cpp)", after=0.05):
        time.sleep(0.2)
    with build._progress("kiln: quick step", after=0.5):
        pass
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "kiln: building C++ kernels (x.cpp) ..." and err[1].startswith("kiln: building C++ kernels (x.cpp) done in")
    assert len(err) == 2  # the quick step says nothing
