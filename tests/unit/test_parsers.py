"""Parsers: type by content, pages, tables, and the refusals (encrypted, corrupt, empty, zip bombs)."""

from __future__ import annotations

import io
import zipfile

import pytest

from mindfu_adapters.parser.auto import AutoParser
from mindfu_adapters.parser.docx import DocxParser
from mindfu_core.errors import UnprocessableContent, UnsupportedMediaType
from tests.fixtures.documents import encrypt_pdf, make_docx, make_pdf

parser = AutoParser()


def test_pdf_pages_keep_their_numbers() -> None:
    data = make_pdf(["Alpha page one.", "Beta page two.\nSecond line."])
    parsed = parser.parse(data, "report.pdf")
    assert parsed.media_type == "application/pdf"
    assert [n for n, _ in parsed.pages] == [1, 2]
    assert "Alpha page one." in parsed.pages[0][1]
    assert "Second line." in parsed.pages[1][1]


def test_type_comes_from_the_bytes_not_the_name() -> None:
    assert parser.parse(make_pdf(["Inside a .txt name."]), "notes.txt").media_type == "application/pdf"
    docx = parser.parse(make_docx(["Hello from Word."]), "image.png")
    assert docx.media_type.endswith("wordprocessingml.document")
    with pytest.raises(UnsupportedMediaType):
        parser.parse(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "notes.md")


def test_docx_paragraphs_and_tables_in_order() -> None:
    data = make_docx(["Intro paragraph.", "Second paragraph."], table=[["Name", "Age"], ["Ada", "36"]])
    text = parser.parse(data, "people.docx").text
    assert text.index("Intro paragraph.") < text.index("Second paragraph.") < text.index("Name | Age")
    assert "Ada | 36" in text


def test_text_markdown_and_code() -> None:
    assert parser.parse(b"# Title\n\nBody", "README.md").media_type == "text/markdown"
    assert parser.parse(b"def f():\n    return 1\n", "mod.py").media_type == "text/x-python"
    assert parser.parse("héllo wörld".encode(), "notes").text == "héllo wörld"
    assert parser.parse("\ufeffwith bom".encode(), "a.txt").text == "with bom"


def test_encrypted_pdf_is_refused_with_the_reason() -> None:
    with pytest.raises(UnprocessableContent, match="encrypted"):
        parser.parse(encrypt_pdf(make_pdf(["secret text"])), "locked.pdf")


def test_corrupt_pdf_and_docx() -> None:
    with pytest.raises(UnprocessableContent, match="not a readable PDF"):
        parser.parse(b"%PDF-1.4\n garbage that is not a pdf", "broken.pdf")
    truncated = make_docx(["x" * 1000])[:-200]
    with pytest.raises((UnprocessableContent, UnsupportedMediaType)):
        parser.parse(truncated, "broken.docx")


def test_documents_without_text() -> None:
    with pytest.raises(UnprocessableContent, match="no extractable text"):
        parser.parse(make_pdf([""]), "blank.pdf")
    with pytest.raises(UnprocessableContent, match="no text"):
        parser.parse(b"   \n\n ", "blank.txt")
    with pytest.raises(UnprocessableContent, match="no text"):
        parser.parse(make_docx([""]), "blank.docx")


def test_docx_zip_bombs_are_refused_before_unpacking() -> None:
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        archive.writestr("word/padding.bin", bytes(3 * 1024 * 1024))
    with pytest.raises(UnprocessableContent, match="zip bomb"):
        DocxParser(max_uncompressed=1024 * 1024).parse(big.getvalue(), "bomb.docx")
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        for i in range(50):
            archive.writestr(f"word/part{i}.xml", b"x")
    with pytest.raises(UnprocessableContent, match="parts"):
        DocxParser(max_entries=20).parse(many.getvalue(), "many.docx")


def test_a_pdf_whose_stream_inflates_past_the_limit_is_refused_not_a_server_error() -> None:
    bomb = make_pdf(["boom"], inflate_to=80_000_000)  # pypdf stops inflating at 75 MB
    assert len(bomb) < 200_000
    with pytest.raises(UnprocessableContent, match="inflates past the parser's limit"):
        AutoParser().parse(bomb, "bomb.pdf")
    assert AutoParser().parse(make_pdf(["fine"], inflate_to=1000), "ok.pdf").pages[0][1] == "fine"
