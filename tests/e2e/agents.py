"""Coding agents installed from the registries for the end-to-end tests, each in its own cached place.

Mistral Vibe pins every dependency exactly (pydantic, starlette, httpx...), so it lives in a virtual
environment of its own (it needs Python 3.12); Claude Code, Codex and opencode come from npm. Each is
installed once, under ``.cache/agents`` or its lockfile's ``node_modules`` (ignored by git), and reused.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "agents"
VIBE_VERSION = "3.0.2"  # 3.0.3 pins certifi==2026.10.19, which PyPI serves only as 2026.10.19.post1
CLAUDE_CODE_DIR = Path(__file__).with_name("claude_code")
CODEX_DIR = Path(__file__).with_name("codex")
OPENCODE_DIR = Path(__file__).with_name("opencode")


def unavailable(reason: str) -> None:
    """Skip on a developer machine without the tool; fail where CI requires the agents."""
    if os.environ.get("MINDFU_REQUIRE_AGENTS"):
        pytest.fail(f"{reason} (MINDFU_REQUIRE_AGENTS is set)")
    pytest.skip(reason)


def _python312() -> str | None:
    """A Python 3.12+ interpreter that runs (pyenv shims exist for versions that are not selected)."""
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.1[234]*/bin/python3.1[234]")))
    candidates += [found for name in ("python3.12", "python3.13") if (found := shutil.which(name))]
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def vibe() -> Path:
    """The ``vibe`` executable of mistral-vibe, installed into its own venv on first use."""
    home = CACHE / f"vibe-{VIBE_VERSION}"
    executable = home / "bin" / "vibe"
    if executable.exists():
        return executable
    python = _python312()
    if python is None:
        unavailable("Mistral Vibe needs Python 3.12 or newer, and none is installed")
    assert python is not None
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(home)], check=True, timeout=120)
    subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", f"mistral-vibe=={VIBE_VERSION}"],
        check=True,
        timeout=600,
    )
    return executable


def _npm_installed(folder: Path, executable: Path) -> Path:
    """``executable`` from ``folder``'s lockfile, installed by ``npm ci`` first and when the lock moves."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        unavailable(f"node and npm are not installed: {folder.name} needs them")
    assert npm is not None
    installed = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True, timeout=600
        )
    if not executable.exists():  # an optional platform package npm skipped on this machine
        unavailable(f"{executable.name} has no build for this platform in {folder.name}'s lockfile")
    return executable


def claude_code() -> Path:
    """The ``claude`` CLI from ``tests/e2e/claude_code``'s lockfile."""
    return _npm_installed(CLAUDE_CODE_DIR, CLAUDE_CODE_DIR / "node_modules" / ".bin" / "claude")


def codex() -> Path:
    """The Codex CLI (npm ``@openai/codex``, its Linux x64 binary pinned by the lockfile)."""
    return _npm_installed(CODEX_DIR, CODEX_DIR / "node_modules" / ".bin" / "codex")


def opencode() -> Path:
    """opencode's Linux x64 binary (npm ``opencode-linux-x64``, what ``opencode-ai``'s launcher runs)."""
    return _npm_installed(
        OPENCODE_DIR, OPENCODE_DIR / "node_modules" / "opencode-linux-x64" / "bin" / "opencode"
    )
