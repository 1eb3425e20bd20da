"""What a parser makes of an uploaded file: its detected type and its text, page by page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedDocument:
    """Text of a document; ``pages`` holds (page number or None, text) in reading order."""

    media_type: str
    pages: tuple[tuple[int | None, str], ...]
    title: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(text for _, text in self.pages)
