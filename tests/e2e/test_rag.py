"""End to end RAG: `mindfu serve` (SmolLM2, fastembed, Qdrant local, SQLite) with the openai SDK.

Upload a generated PDF and DOCX holding facts the model cannot know, ask, and get answers whose sources
name the document and page; the same file again is a duplicate; after a delete, retrieval stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.server import Server, running_server
from tests.fixtures.documents import make_docx, make_pdf

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
PDF_FACT = "The access code of the Velmora vault is 7341."
DOCX_FACT = "The Quillon lighthouse keeper is named Bartholomew Fennick."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("rag")) as running:
        yield running


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def upload(server: Server, name: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{server.base_url}/documents/upload", files={"file": (name, data)}, timeout=120)


def ask(client: openai.OpenAI, question: str, **extra: Any) -> tuple[str, list[dict[str, Any]]]:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=48,
        extra_body=extra or None,
    )
    sources = (reply.model_extra or {}).get("mindfu", {}).get("sources", [])
    return reply.choices[0].message.content or "", sources


def test_grounded_answers_cite_document_and_page(server: Server, client: openai.OpenAI) -> None:
    pdf = make_pdf(["Velmora annual report.\nNothing secret on this page.", PDF_FACT])
    first = upload(server, "velmora-report.pdf", pdf)
    assert first.status_code == 201, first.text
    pdf_doc = first.json()
    docx = upload(server, "quillon.docx", make_docx(["Quillon notes", DOCX_FACT]))
    assert docx.status_code == 201, docx.text

    answer, sources = ask(client, "What is the access code of the Velmora vault?")
    assert sources, answer
    top = sources[0]
    assert (top["document_id"], top["name"], top["page"]) == (pdf_doc["id"], "velmora-report.pdf", 2)
    assert "7341" in top["excerpt"]
    assert "7341" in answer

    answer, sources = ask(client, "Who is the keeper of the Quillon lighthouse?")
    assert sources[0]["name"] == "quillon.docx"
    assert "Fennick" in answer or "Bartholomew" in answer

    with client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the access code of the Velmora vault?"}],
        temperature=0,
        max_tokens=16,
        stream=True,
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].model_extra and chunks[-1].model_extra["mindfu"]["sources"][0]["page"] == 2

    again = upload(server, "renamed-copy.pdf", pdf)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == pdf_doc["id"]

    assert httpx.delete(f"{server.base_url}/documents/{pdf_doc['id']}").json()["deleted"] is True
    _, sources = ask(client, "What is the access code of the Velmora vault?")
    assert all(s["document_id"] != pdf_doc["id"] for s in sources)
    hits = httpx.post(
        f"{server.base_url}/retrieve", json={"query": "Velmora vault access code", "min_score": None}
    ).json()
    assert all(h["document_id"] != pdf_doc["id"] for h in hits["data"])


def test_embeddings_with_the_sdk(server: Server, client: openai.OpenAI) -> None:
    # the SDK asks for base64 by default and decodes it; "float" is asked for explicitly
    out = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat sat", "a cat sat down"])
    assert len(out.data) == 2 and len(out.data[0].embedding) == 384
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat sat", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(out.data[0].embedding, abs=1e-6)
    assert sum(x * x for x in floats.data[0].embedding) == pytest.approx(1.0, abs=1e-4)
    similar = sum(a * b for a, b in zip(out.data[0].embedding, out.data[1].embedding, strict=True))
    assert similar > 0.8
