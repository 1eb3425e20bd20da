"""AutoParser: picks the parser by the bytes (PDF, DOCX, then text); anything else is unsupported."""

from __future__ import annotations

from collections.abc import Sequence

from mindfu_adapters.parser.docx import DocxParser
from mindfu_adapters.parser.pdf import PdfParser
from mindfu_adapters.parser.text import TextParser
from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.errors import UnsupportedMediaType
from mindfu_core.ports.parser import DocumentParser


class AutoParser:
    """A ``DocumentParser`` that delegates to the first parser accepting the content."""

    def __init__(self, parsers: Sequence[DocumentParser] | None = None) -> None:
        self._parsers: list[DocumentParser] = list(parsers or (PdfParser(), DocxParser(), TextParser()))

    def accepts(self, data: bytes, filename: str) -> bool:
        return any(parser.accepts(data, filename) for parser in self._parsers)

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        for parser in self._parsers:
            if parser.accepts(data, filename):
                return parser.parse(data, filename)
        raise UnsupportedMediaType(
            f"{filename!r} is not a supported document (PDF, DOCX, Markdown, text or source code)"
        )
