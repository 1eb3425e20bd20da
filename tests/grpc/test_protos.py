"""The contract itself: the committed stubs are what proto/ generates, and proto/ passes `buf lint`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_match_the_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_protos_pass_buf_lint() -> None:
    buf = Path(sys.executable).with_name("buf")
    result = subprocess.run([str(buf), "lint", "proto"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
