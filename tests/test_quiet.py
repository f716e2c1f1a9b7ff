"""The command line is quiet: no TensorFlow log lines, and --help / list answer without TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.quiet import is_noise

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TF_LINES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796117920.333189   17251 port.cc:153] oneDNN custom operations are on.",
    b"E0000 00:00:1796117929.395837   17251 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
]
OUR_LINES = [b"digitlab evaluate: error: no model named 'x' in models", b"epoch 3/12  loss 0.0512",
             b"Traceback (most recent call last):", b"I like 0:0.00 1:0.99"]


@pytest.mark.parametrize("line", TF_LINES)
def test_tensorflow_start_up_lines_are_noise(line):
    assert is_noise(line)


@pytest.mark.parametrize("line", OUR_LINES)
def test_our_own_lines_and_tracebacks_are_kept(line):
    assert not is_noise(line)


def _run(*arguments: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "digitlab", *arguments], capture_output=True,
                          text=True, timeout=120, env=environment)


@pytest.mark.parametrize("arguments", [("--help",), ("train", "--help"), ("list",)])
def test_help_and_list_do_not_import_tensorflow(arguments):
    result = _run(*arguments)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "tensorflow" not in imported and "keras" not in imported


def test_a_command_that_runs_a_model_prints_no_log_lines():
    picture = PROJECT_ROOT / "docs" / "draw.png"
    result = subprocess.run([sys.executable, "-m", "digitlab", "predict", str(picture), "--model", "mlp"],
                            capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                            env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"})
    assert result.returncode == 0 and result.stdout.startswith(f"{picture}: ")
    assert result.stderr == ""
