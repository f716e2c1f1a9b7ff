"""The README's Python example works as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_python_example_runs(mnist_path):
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1
    environment = {**os.environ, "DIGITLAB_MNIST": str(mnist_path)}
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=PROJECT_ROOT, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    last_lines = result.stdout.strip().splitlines()[-2:]
    digit, confidence = last_lines[0].split()
    assert 0 <= int(digit) <= 9 and 0 <= float(confidence) <= 1
    assert 0.3 < float(last_lines[1]) <= 1.0  # the UCI accuracy of a one-epoch LeNet: far above chance
