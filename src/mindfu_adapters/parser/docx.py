"""DocxParser: paragraphs and tables in document order with python-docx, behind zip-bomb limits."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.errors import UnprocessableContent

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class DocxParser:
    """DOCX by content: a zip holding ``word/document.xml``."""

    def __init__(self, *, max_uncompressed: int = 200 * 1024 * 1024, max_entries: int = 2000) -> None:
        self._max_uncompressed = max_uncompressed
        self._max_entries = max_entries

    def accepts(self, data: bytes, filename: str) -> bool:
        if not data.startswith(b"PK\x03\x04"):
            return False
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "word/document.xml" in archive.namelist()
        except zipfile.BadZipFile:
            return False

    def _check_archive(self, data: bytes, filename: str) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = archive.infolist()
        except zipfile.BadZipFile as exc:
            raise UnprocessableContent(f"{filename!r} is not a readable DOCX ({exc})") from exc
        if len(entries) > self._max_entries:
            raise UnprocessableContent(
                f"{filename!r} has {len(entries)} parts, more than {self._max_entries}"
            )
        total = sum(entry.file_size for entry in entries)
        if total > self._max_uncompressed:
            raise UnprocessableContent(
                f"{filename!r} would unpack to {total} bytes, "
                f"over the {self._max_uncompressed} limit (a zip bomb?)"
            )

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        import docx

        self._check_archive(data, filename)
        try:
            document = docx.Document(io.BytesIO(data))
            blocks = [text for text in _blocks(document) if text]
            title = document.core_properties.title or None
        except Exception as exc:  # python-docx raises many kinds for broken parts
            raise UnprocessableContent(f"{filename!r} is not a readable DOCX ({exc})") from exc
        if not blocks:
            raise UnprocessableContent(f"{filename!r} contains no text")
        return ParsedDocument(media_type=DOCX_MEDIA_TYPE, pages=((None, "\n\n".join(blocks)),), title=title)


def _blocks(document: Any) -> list[str]:
    """Paragraph texts and tables (rows as ``a | b | c``), in the order they appear."""
    out: list[str] = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            out.append("\n".join(row for row in rows if row.strip(" |")))
        else:
            out.append(block.text.strip())
    return out
