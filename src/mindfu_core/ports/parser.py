"""The DocumentParser port: bytes of an uploaded file to text."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mindfu_core.domain.parsing import ParsedDocument


@runtime_checkable
class DocumentParser(Protocol):
    """Parses what it recognizes; the type is decided from the bytes, the file name is only a hint."""

    def accepts(self, data: bytes, filename: str) -> bool:
        """Whether these bytes are a format this parser reads."""
        ...

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """The text; ``UnprocessableContent`` for a corrupt, encrypted or empty document."""
        ...
