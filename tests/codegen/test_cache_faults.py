"""Fault tests for Kiln's on-disk caches: corrupted, truncated, swapped and read-only entries of the
C++ library cache, the Triton module cache and the autotuning cache. None may crash, be used when it
is not its key's entry, or make a compile fail."""
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.fx as fx

from kiln import config
from kiln.backend import compile_graph
from kiln.codegen import cache_files
from kiln.codegen.cpp import build
from kiln.codegen.triton import autotune
from kiln.codegen.triton.autotune import AutotuneStats, KernelLauncher
from kiln.codegen.triton.configs import LaunchConfig


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    monkeypatch.setattr(cache_files, "_private", {})
    return tmp_path


def _probe(value: int) -> str:
    return f'extern "C" int kiln_probe() {{ return {value}; }}\n'


def _call_probe(lib: Path) -> int:
    import ctypes

    build.load(lib, {})  # checks the library's own key
    return ctypes.CDLL(str(lib)).kiln_probe()


def _entry(lib: Path):
    return lib, lib.with_suffix(".sha256")


# -- the C++ library cache -----------------------------------------------------------------------
def test_entry_swapped_with_its_checksum_is_rebuilt_not_loaded(cache):
    """Another entry's .so copied over this one's, with its checksum: the checksum is valid for the
    bytes, but it names the other key, so the entry is rebuilt (loading it ran the wrong kernels)."""
    a, b = build.build(_probe(1)), build.build(_probe(2))
    for src, dst in zip(_entry(b), _entry(a)):
        shutil.copyfile(src, dst)
    before = build.BuildStats.builds
    again = build.build(_probe(1))
    assert build.BuildStats.builds == before + 1 and again == a
    assert _call_probe(a) == 1


def test_library_swapped_after_its_check_is_refused_at_load(cache):
    """A file replaced between the check and dlopen: the library's own key symbol gives it away."""
    a, b = build.build(_probe(3)), build.build(_probe(4))
    shutil.copyfile(b, a)
    with pytest.raises(cache_files.CacheEntryError, match="not the library built for its key"):
        build.load(a, {})


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "bad_record", "no_record", "empty_record"])
def test_damaged_entry_is_rebuilt(cache, damage):
    lib = build.build(_probe(5))
    so, record = _entry(lib)
    if damage == "truncated":
        so.write_bytes(so.read_bytes()[: so.stat().st_size // 2])
    elif damage == "corrupted":
        data = bytearray(so.read_bytes())
        data[len(data) // 2] ^= 0xFF
        so.write_bytes(bytes(data))
    elif damage == "bad_record":
        record.write_bytes(b"\xff\xfenot a record")
    elif damage == "no_record":
        record.unlink()
    else:
        record.write_text("")
    before = build.BuildStats.builds
    assert build.build(_probe(5)) == lib and build.BuildStats.builds == before + 1
    assert _call_probe(lib) == 5


def test_unwritable_cache_folder_still_compiles(tmp_path, monkeypatch):
    """KILN_CACHE_DIR where no folder can be made (under a regular file: refused for every user):
    kernels are built in a private folder of the process, and run."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setattr(config, "cache_dir", str(blocker / "cache"))
    monkeypatch.setattr(cache_files, "_private", {})
    x = torch.randn(4, 6)
    for target in ("cpp", "triton"):
        c = compile_graph(fx.symbolic_trace(lambda x: torch.softmax(x * 2.5, -1)), [x], target=target)
        torch.testing.assert_close(c.call(x), torch.softmax(x * 2.5, -1))
    assert not (blocker / "cache").exists()


def _read_only(folder: Path):
    for path in folder.rglob("*"):
        path.chmod(stat.S_IRUSR | (stat.S_IXUSR if path.is_dir() else 0))
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)


def _writable(folder: Path):
    folder.chmod(stat.S_IRWXU)
    for path in folder.rglob("*"):
        path.chmod(stat.S_IRWXU)


def test_read_only_cache_with_entries_and_without(cache):
    """A read-only cache (a shared one owned by someone else): its valid entries are used, and what
    it lacks is built privately; damaged read-only entries are never used."""
    x = torch.randn(3, 5)
    fn = lambda x: x.sin() * 3 + 1  # noqa: E731
    compile_graph(fx.symbolic_trace(fn), [x], target="cpp")
    (lib,) = (cache / "cpp").glob("*.so")
    _read_only(cache)
    try:
        before = build.BuildStats.builds
        c = compile_graph(fx.symbolic_trace(fn), [x], target="cpp")
        torch.testing.assert_close(c.call(x), fn(x))
        assert build.BuildStats.builds == before  # read from the read-only folder
        other = lambda x: x.cos() - 2  # noqa: E731  (not in the cache)
        c = compile_graph(fx.symbolic_trace(other), [x], target="cpp")
        torch.testing.assert_close(c.call(x), other(x))
    finally:
        _writable(cache)
    # now damaged (as a new file: this process has the old one mapped, and truncating a mapped
    # library in place is a SIGBUS in any program), and read-only again
    damaged = lib.with_name("damaged")
    damaged.write_bytes(lib.read_bytes()[:100])
    os.replace(damaged, lib)
    _read_only(cache)
    try:
        c = compile_graph(fx.symbolic_trace(fn), [x], target="cpp")
        torch.testing.assert_close(c.call(x), fn(x))
    finally:
        _writable(cache)


SWAP_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.fx as fx
    from kiln.backend import compile_graph
    from kiln.codegen.cpp import build
    fns = {"a": lambda x: torch.softmax(x * 3.25, -1), "b": lambda x, y: (x * y).sum(0) + y.amax(1)}
    args = {"a": [torch.randn(5, 7)], "b": [torch.randn(6, 6), torch.randn(6, 6)]}
    name = sys.argv[1]
    c = compile_graph(fx.symbolic_trace(fns[name]), args[name], target="cpp")
    torch.testing.assert_close(c.call(*args[name]), fns[name](*args[name]))
    print(build.BuildStats.builds, c.backend.library.name)
""")


def _run_swap_script(cache_dir, name):
    out = subprocess.run([sys.executable, "-c", SWAP_SCRIPT, name], capture_output=True, text=True,
                         env={**os.environ, "KILN_CACHE_DIR": str(cache_dir)})
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"  # -11: SIGSEGV
    builds, lib = out.stdout.split()
    return int(builds), cache_dir / "cpp" / lib


@pytest.mark.slow  # three fresh processes; test_entry_swapped_with_its_checksum_is_rebuilt_not_loaded covers it fast
def test_real_kernels_swapped_in_a_new_process_do_not_crash(tmp_path):
    """End to end, in a fresh process: graph a's entry replaced by graph b's (library and checksum);
    loading it ran b's kernels with a's arguments (SIGSEGV)."""
    _, lib_a = _run_swap_script(tmp_path, "a")
    _, lib_b = _run_swap_script(tmp_path, "b")
    for src, dst in zip(_entry(lib_b), _entry(lib_a)):
        shutil.copyfile(src, dst)
    builds, _ = _run_swap_script(tmp_path, "a")
    assert builds == 1


# -- the Triton module cache ---------------------------------------------------------------------
def _triton(fn, *args):
    c = compile_graph(fx.symbolic_trace(fn), list(args), target="triton")
    torch.testing.assert_close(c.call(*args), fn(*args))
    return c


@pytest.mark.parametrize("damage", ["truncated", "garbage", "swapped"])
def test_damaged_triton_module_is_rewritten(cache, damage):
    x = torch.randn(4, 8)
    fn, other = (lambda x: torch.relu(x) * 2), (lambda x: x.sum(1) - 1)
    path = _triton(fn, x).backend.path
    if damage == "truncated":
        path.write_text(path.read_text()[:40])
    elif damage == "garbage":
        path.write_text("raise SystemExit('not a kernel module')\n")
    else:  # another graph's module under this name: same kernel name, other code
        shutil.copyfile(_triton(other, x).backend.path, path)
    _triton(fn, x)


def test_triton_module_cache_read_only(cache):
    x = torch.randn(4, 8)
    fn = lambda x: torch.tanh(x) + 1  # noqa: E731
    _triton(fn, x)
    _read_only(cache)
    try:
        _triton(fn, x)
        _triton(lambda x: torch.sigmoid(x) - 1, x)  # not cached yet
    finally:
        _writable(cache)


# -- the autotuning cache ------------------------------------------------------------------------
CONFIGS = [LaunchConfig(XBLOCK=64, num_warps=2), LaunchConfig(XBLOCK=16, num_warps=1)]


class _FakeKernel:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


def _launcher(source="kernel-a"):
    return KernelLauncher(_FakeKernel(), source, CONFIGS, autotune=True, device="fake-gpu",
                          benchmark=lambda launch: (launch(), 1.0)[1])


def test_autotune_entry_of_another_kernel_is_retimed(cache):
    _launcher("kernel-b")(xnumel=100)
    (entry_b,) = (cache / "triton" / "autotune").glob("*.json")
    _launcher("kernel-a")(xnumel=100)
    entry_a = next(p for p in (cache / "triton" / "autotune").glob("*.json") if p != entry_b)
    shutil.copyfile(entry_b, entry_a)  # names a candidate of this kernel too, but is not its entry
    timed, hits = AutotuneStats.timed, AutotuneStats.cache_hits
    _launcher("kernel-a")(xnumel=100)
    assert AutotuneStats.timed == timed + len(CONFIGS) and AutotuneStats.cache_hits == hits
    assert json.loads(entry_a.read_text())["key"] == entry_a.stem


@pytest.mark.parametrize("damage", ["truncated", "not_a_dict", "unknown_config"])
def test_damaged_autotune_entry_is_retimed(cache, damage):
    _launcher()(xnumel=100)
    (entry,) = (cache / "triton" / "autotune").glob("*.json")
    text = {"truncated": entry.read_text()[:10], "not_a_dict": "[1, 2]",
            "unknown_config": json.dumps({"key": entry.stem, "config": {"XBLOCK": 3}})}[damage]
    entry.write_text(text)
    timed = AutotuneStats.timed
    _launcher()(xnumel=100)
    assert AutotuneStats.timed == timed + len(CONFIGS)


def test_autotune_without_a_writable_cache_still_launches(tmp_path, monkeypatch):
    """Timing runs inside a call: a cache folder that cannot be written must not raise there."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(config, "cache_dir", str(blocker / "cache"))
    monkeypatch.setattr(cache_files, "writable_dir", lambda kind: blocker / kind)  # and no private one either
    launcher = _launcher()
    launcher(xnumel=100)
    assert launcher.chosen[(100,)] in CONFIGS
    assert autotune.cache_dir() == blocker / "cache" / "triton"
