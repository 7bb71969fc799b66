"""`python -m core` prints its own lines: TensorFlow's start-up log is kept out unless --verbose, real errors stay."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from core.console import VERBOSE, is_chatter, quiet_tensorflow
from tests.conftest import ROOT

ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = ("I0000 00:00:1796528508.579383   31841 port.cc:153] oneDNN custom operations are on. You may see slightly "
          "different numerical results due to floating-point round-off errors from different computation orders. To "
          "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.")
GUARD = ("I0000 00:00:1796528589.042981   32440 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
         "available CPU instructions in performance-critical operations.")
INSTRUCTIONS = ("To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with "
                "the appropriate compiler flags.")
CUDNN = ("E0000 00:00:1733164324.213153   11722 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to "
         "register factory for plugin cuDNN when one has already been registered")


@pytest.mark.parametrize("line, chatter", [
    (ABSL, True), (ONEDNN, True), (GUARD, True), (INSTRUCTIONS, True), (CUDNN, True),
    ("W0000 00:00:1.5   12 some_module.cc:42] a warning at start-up", True),
    ("F0000 00:00:1.5   12 some_module.cc:42] Check failed: a fatal error", False),
    ("E0000 00:00:1.5   12 some_module.cc:42] Could not open the GPU: an error", False),
    ("Traceback (most recent call last):", False),
    ("error: unknown dataset 'nope'", False),
    ("ImportError: libcudart.so.12: cannot open shared object file", False),
])
def test_tensorflows_start_up_lines_are_told_from_real_errors(line, chatter):
    assert is_chatter(line) is chatter


def test_verbose_is_taken_out_of_the_arguments_and_nothing_else_is(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert quiet_tensorflow(["report", "RUN", VERBOSE, "-o", "x.html"]) == ["report", "RUN", "-o", "x.html"]
    assert quiet_tensorflow(["--dataset", "digits-8x8"]) == ["--dataset", "digits-8x8"]


def run_python(code: str, path: str = "", **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=os.pathsep.join(p for p in (path, str(ROOT)) if p), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, cwd=ROOT, timeout=300)


def test_the_first_import_of_tensorflow_drops_its_chatter_and_passes_real_lines_on(tmp_path):
    """A stand-in `tensorflow` package writes what the real one writes at import, and one real error, on fd 2."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent(f"""
        import os, sys
        os.write(2, {(ABSL + chr(10) + ONEDNN + chr(10)).encode()!r})
        os.write(2, b"E0000 00:00:1.5   12 loader.cc:42] a real problem at import\\n")
        print("a Python warning", file=sys.stderr)
        os.write(2, {(GUARD + chr(10) + INSTRUCTIONS + chr(10)).encode()!r})
        value = 42
    """))
    code = """
        import os, sys
        from core.console import quiet_tensorflow
        quiet_tensorflow([])
        print("before", file=sys.stderr, flush=True)
        import tensorflow
        print("after", tensorflow.value, tensorflow.__loader__.__class__.__name__, file=sys.stderr)
        os.write(2, b"W0000 00:00:9.9   12 later.cc:1] written after the import: not captured\\n")
    """
    done = run_python(code, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "before", "E0000 00:00:1.5   12 loader.cc:42] a real problem at import", "a Python warning",
        "after 42 SourceFileLoader", "W0000 00:00:9.9   12 later.cc:1] written after the import: not captured"]
    verbose = run_python(code.replace("quiet_tensorflow([])", f"quiet_tensorflow([{VERBOSE!r}])"), str(tmp_path))
    assert ABSL in verbose.stderr and ONEDNN in verbose.stderr  # --verbose: everything, as TensorFlow wrote it


def test_an_import_that_fails_still_says_why(tmp_path):
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(f"import os\nos.write(2, {(ABSL + chr(10)).encode()!r})\n"
                                      "raise ImportError('libtensorflow_framework.so.2: cannot open shared object')\n")
    done = run_python("from core.console import quiet_tensorflow\nquiet_tensorflow([])\nimport tensorflow\n",
                      str(tmp_path))
    assert done.returncode == 1
    assert "ImportError: libtensorflow_framework.so.2: cannot open shared object" in done.stderr
    assert ABSL not in done.stderr


def test_the_cli_prints_its_own_lines_only_and_everything_with_verbose(tmp_path):
    command = [sys.executable, "-m", "core", "--dataset", "digits-8x8", "--arch", "lab", "--train", "lab",
               "--epochs", "1", "--runs", str(tmp_path / "runs")]
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=environment, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    lines = quiet.stdout.splitlines()
    assert [line[:5] for line in lines if not line.startswith("      ")] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert not any(is_chatter(line) or "oneDNN" in line or "absl" in line for line in lines)
    raw = run_python("import tensorflow")  # what this TensorFlow writes at import, with nothing kept out
    verbose = subprocess.run([*command, VERBOSE], capture_output=True, text=True, cwd=ROOT, env=environment,
                             timeout=600)
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.splitlines()[0] == lines[0]
    shown = sum(is_chatter(line) for line in verbose.stderr.splitlines())
    assert shown >= sum(is_chatter(line) for line in raw.stderr.splitlines())  # (none, on a TensorFlow that is quiet)


def test_a_bad_argument_still_says_so_on_stderr(tmp_path):
    done = subprocess.run([sys.executable, "-m", "core", "--dataset", "nope", "--runs", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: unknown dataset 'nope'")
