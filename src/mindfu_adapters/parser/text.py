"""TextParser: plain text, Markdown and source code — any UTF-8 (or UTF-16 with BOM) without binary bytes."""

from __future__ import annotations

import codecs
from pathlib import PurePath

from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.errors import UnprocessableContent

MARKDOWN = {".md", ".markdown", ".mdx"}
CODE = {
    ".py": "text/x-python", ".js": "text/javascript", ".ts": "text/x-typescript", ".go": "text/x-go",
    ".rs": "text/x-rust", ".java": "text/x-java", ".c": "text/x-c", ".h": "text/x-c", ".cpp": "text/x-c++",
    ".cs": "text/x-csharp", ".rb": "text/x-ruby", ".sh": "text/x-shellscript", ".sql": "text/x-sql",
    ".kt": "text/x-kotlin", ".swift": "text/x-swift", ".php": "text/x-php", ".yaml": "text/yaml",
    ".yml": "text/yaml", ".toml": "text/x-toml", ".json": "application/json", ".html": "text/html",
    ".css": "text/css", ".proto": "text/x-protobuf",
}  # fmt: skip


def _decode(data: bytes) -> str | None:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class TextParser:
    """Text by content (valid UTF-8, no NUL bytes); Markdown or a language by the extension."""

    def accepts(self, data: bytes, filename: str) -> bool:
        return _decode(data[:65536].rsplit(b"\n", 1)[0] if len(data) > 65536 else data) is not None

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        text = _decode(data)
        if text is None:
            raise UnprocessableContent(f"{filename!r} is not valid UTF-8 text")
        if not text.strip():
            raise UnprocessableContent(f"{filename!r} contains no text")
        suffix = PurePath(filename).suffix.lower()
        media_type = "text/markdown" if suffix in MARKDOWN else CODE.get(suffix, "text/plain")
        return ParsedDocument(media_type=media_type, pages=((None, text),))
