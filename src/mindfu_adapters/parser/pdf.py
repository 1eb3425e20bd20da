"""PdfParser: text per page with pypdf; encrypted or corrupt files are refused with a reason."""

from __future__ import annotations

import io

from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.errors import UnprocessableContent

PDF_MAGIC = b"%PDF-"


class PdfParser:
    """PDF by its ``%PDF-`` header (within the first KiB, as readers allow)."""

    def accepts(self, data: bytes, filename: str) -> bool:
        return PDF_MAGIC in data[:1024]

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        from pypdf import PdfReader
        from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise UnprocessableContent(f"{filename!r} is an encrypted PDF; upload it without a password")
            pages = tuple(
                (number, (page.extract_text() or "").strip()) for number, page in enumerate(reader.pages, 1)
            )
            title = reader.metadata.title if reader.metadata else None
        except UnprocessableContent:
            raise
        except LimitReachedError as exc:  # a stream that inflates past pypdf's bounds: a decompression bomb
            raise UnprocessableContent(
                f"{filename!r} holds a stream that inflates past the parser's limit ({exc})"
            ) from exc
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
            raise UnprocessableContent(f"{filename!r} is not a readable PDF ({exc})") from exc
        if not any(text for _, text in pages):
            raise UnprocessableContent(
                f"{filename!r} has no extractable text (a scanned PDF needs OCR first)"
            )
        return ParsedDocument(media_type="application/pdf", pages=pages, title=title or None)
