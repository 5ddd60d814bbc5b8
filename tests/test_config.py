"""kiln.config reads every KILN_* variable in one place, with one meaning; kiln.logs checks artifact names."""
import os
import subprocess
import sys

import pytest

from kiln import config, logs


def _run(code, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") or k == "KILN_CACHE_DIR"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**clean, **env})


@pytest.mark.parametrize("value, strict", [("1", True), ("true", True), ("True", True), ("yes", True), ("on", True),
                                           ("0", False), ("false", False), ("False", False), ("", False), ("off", False),
                                           ("ops", "ops"), ("OPS", "ops")])
def test_strict_means_the_same_everywhere(value, strict):
    # the back end and capture both read config.strict: `false` is off in both
    out = _run("from kiln import config; print(config.strict)", KILN_STRICT=value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(strict)


def test_bad_values_are_errors_that_say_what_is_valid():
    out = _run("import kiln", KILN_STRICT="maybe")
    assert out.returncode != 0 and "KILN_STRICT='maybe'" in out.stderr and "true" in out.stderr
    assert "or ops" in out.stderr
    out = _run("import kiln", KILN_TARGET="cuda")
    assert out.returncode != 0 and "'cpp' or 'triton'" in out.stderr
    out = _run("import kiln", KILN_PARTITION="greedy")
    assert out.returncode != 0 and "'mincut' or 'save_all'" in out.stderr
    out = _run("import kiln", KILN_LOGS="graph,grpah")
    assert out.returncode != 0
    assert "unknown Kiln log artifact(s) 'grpah'" in out.stderr and "recompiles" in out.stderr and "all" in out.stderr


@pytest.mark.parametrize("value, partition", [("", "mincut"), ("mincut", "mincut"), ("save_all", "save_all"),
                                              ("SAVE_ALL", "save_all")])
def test_partition_strategy(value, partition):
    out = _run("from kiln import config; print(config.partition)", KILN_PARTITION=value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == partition


def test_logs_all_turns_on_every_artifact():
    out = _run("import logging, kiln\n"
               "from kiln.logs import ARTIFACTS\n"
               "print(all(logging.getLogger('kiln.' + a).isEnabledFor(logging.DEBUG) for a in ARTIFACTS))",
               KILN_LOGS="all")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_get_logger_rejects_unknown_artifacts():
    with pytest.raises(ValueError, match="valid: graph, guards"):
        logs.get_logger("grpah")


def test_one_cache_dir(monkeypatch, tmp_path):
    from kiln.codegen.cpp import build
    from kiln.codegen.triton import autotune

    monkeypatch.setattr(config, "cache_dir", tmp_path)
    assert build.cache_dir() == tmp_path / "cpp" and autotune.cache_dir() == tmp_path / "triton"
    out = _run("from kiln import config; print(config.cache_dir)", KILN_CACHE_DIR=str(tmp_path))
    assert out.stdout.strip() == str(tmp_path)


def test_describe_lists_every_setting():
    text = config.describe()
    for name, (variable, _) in config.VARIABLES.items():
        assert f"{name} = " in text and variable in text
    assert "recompile_limit = " in text
