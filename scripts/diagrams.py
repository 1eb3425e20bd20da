"""Render docs/*.mmd to SVG with the Mermaid CLI (npm, docs/tools) in Debian's chromium: ``make docs``.

Each SVG records the SHA-256 of the source it was rendered from (``<metadata data-source-sha256=...>``), so
``--check`` (and tests/unit/test_diagrams.py) finds a source changed without its picture.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TOOLS = DOCS / "tools"
MARK = re.compile(r'<metadata data-source-sha256="([0-9a-f]{64})"\s*/>')


def sources() -> list[Path]:
    return sorted(DOCS.glob("*.mmd"))


def digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def stale(source: Path) -> str | None:
    """Why ``source``'s SVG is not its rendering, or None."""
    svg = source.with_suffix(".svg")
    if not svg.exists():
        return f"docs/{svg.name} is missing"
    found = MARK.search(svg.read_text(encoding="utf-8"))
    if found is None or found.group(1) != digest(source):
        return f"docs/{svg.name} was not rendered from the current {source.name}"
    return None


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no chromium: `apt-get install chromium` (make docs does it as root)")


def render(source: Path, mmdc: Path, puppeteer: Path) -> None:
    svg = source.with_suffix(".svg")
    subprocess.run(
        [str(mmdc), "--quiet", "-i", str(source), "-o", str(svg), "-b", "white", "-p", str(puppeteer)],
        check=True,
        timeout=300,
    )
    text = svg.read_text(encoding="utf-8")
    opening = re.search(r"<svg\b[^>]*>", text)
    if opening is None:
        sys.exit(f"{svg}: the Mermaid CLI wrote no <svg> element")
    mark = f'<metadata data-source-sha256="{digest(source)}"/>'
    svg.write_text(text[: opening.end()] + mark + text[opening.end() :], encoding="utf-8")
    print(f"rendered {svg.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which SVG is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = [problem for source in sources() if (problem := stale(source))]
        for problem in problems:
            print(problem, "(make docs)")
        return 1 if problems else 0
    mmdc = TOOLS / "node_modules" / ".bin" / "mmdc"
    if not mmdc.exists():
        sys.exit("the Mermaid CLI is not installed: make docs installs it (npm ci in docs/tools)")
    with tempfile.TemporaryDirectory() as scratch:
        puppeteer = Path(scratch) / "puppeteer.json"
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
        config = {"executablePath": chromium(), "args": flags}
        puppeteer.write_text(json.dumps(config), encoding="utf-8")
        os.environ.setdefault("PUPPETEER_SKIP_DOWNLOAD", "1")
        for source in sources():
            render(source, mmdc, puppeteer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
