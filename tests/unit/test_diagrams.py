"""The description's diagrams exist as Mermaid sources in docs/, each with the SVG ``make docs`` rendered
from it; a source changed without its picture fails here."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def diagrams() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diagrams", ROOT / "scripts" / "diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_diagram_of_the_description_is_a_source_with_its_rendering() -> None:
    names = {path.name for path in (ROOT / "docs").glob("*.mmd")}
    assert {"architecture.mmd", "inference-flow.mmd", "training-flow.mmd"} <= names
    for name in names:
        svg = (ROOT / "docs" / name).with_suffix(".svg").read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<svg") and "</svg>" in svg
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "diagrams.py"), "--check"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout


def test_the_readme_shows_the_rendered_pictures() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("docs/inference-flow.svg", "docs/training-flow.svg", "docs/architecture.svg"):
        assert f'src="{name}"' in readme or f"]({name})" in readme


def test_a_source_changed_without_its_svg_is_stale(tmp_path: Path) -> None:
    module = diagrams()
    source = tmp_path / "training-flow.mmd"
    shutil.copy(ROOT / "docs" / "training-flow.mmd", source)
    shutil.copy(ROOT / "docs" / "training-flow.svg", tmp_path / "training-flow.svg")
    assert module.stale(source) is None
    source.write_text(source.read_text(encoding="utf-8") + "  merge --> more[extra]\n", encoding="utf-8")
    assert "not rendered from the current training-flow.mmd" in module.stale(source)
    (tmp_path / "training-flow.svg").unlink()
    assert "missing" in module.stale(source)
