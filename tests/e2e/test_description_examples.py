"""The description's usage examples, verbatim, against ``mindfu serve`` serving its embedded model under the
description's model id (``MINDFU_LLM__MODEL_ID=devstral-small-2``): the chat completion, the file upload
and the raw-text upload, each as its curl sends it (httpx) and, for chat, with the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.server import Server, running_server
from tests.fixtures.documents import make_pdf

pytestmark = pytest.mark.slow
FACT = "The Orvanne ferry leaves from pier 19 at dawn."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"MINDFU_LLM__MODEL_ID": "devstral-small-2"}
    with running_server(tmp_path_factory.mktemp("described"), env=env) as running:
        yield running


def root(server: Server) -> str:
    return server.base_url.removesuffix("/v1")


def post_as_curl(server: Server, path: str, body: str) -> httpx.Response:
    """``curl -X POST URL -H "Content-Type: application/json" -d 'BODY'``: the body's text as it is."""
    headers = {"Content-Type": "application/json"}
    return httpx.post(f"{root(server)}{path}", headers=headers, content=body, timeout=120)


def test_chat_completion_as_described(server: Server) -> None:
    # curl http://localhost:11434/v1/chat/completions -H "Content-Type: application/json" -d '{...}'
    body = """{
    "model": "devstral-small-2",
    "messages": [{"role": "user", "content": "Hello"}]
  }"""
    answer = post_as_curl(server, "/v1/chat/completions", body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["model"] == "devstral-small-2" and reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["choices"][0]["message"]["content"]

    client = openai.OpenAI(base_url=f"{root(server)}/v1", api_key="unused", max_retries=0)
    sdk = client.chat.completions.create(
        model="devstral-small-2", messages=[{"role": "user", "content": "Hello"}]
    )
    assert sdk.model == "devstral-small-2" and sdk.choices[0].message.content


def test_uploads_as_described(server: Server) -> None:
    # curl -X POST http://localhost:11434/v1/documents/upload -F "file=@document.pdf"
    pdf = make_pdf([FACT])
    uploaded = httpx.post(
        f"{root(server)}/v1/documents/upload", files={"file": ("document.pdf", pdf)}, timeout=120
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["chunk_count"] >= 1

    # curl -X POST http://localhost:11434/v1/documents -H "Content-Type: application/json" -d '{...}'
    body = """{
    "content": "Your document content here",
    "metadata": {"source": "manual"},
    "chunk": true
  }"""
    raw = post_as_curl(server, "/v1/documents", body)
    assert raw.status_code == 201, raw.text
    document = raw.json()
    assert document["chunk_count"] == 1 and document["metadata"] == {"source": "manual"}

    again = post_as_curl(server, "/v1/documents", body)
    assert again.status_code == 200 and again.json()["duplicate"] is True  # SHA-256 of the content
    assert again.json()["id"] == document["id"]

    # the uploaded file now answers: the chat that follows retrieves it and cites it
    asked = {
        "model": "devstral-small-2",
        "messages": [{"role": "user", "content": "Where does the Orvanne ferry leave from?"}],
        "max_tokens": 24,
        "temperature": 0,
    }
    answer = httpx.post(f"{root(server)}/v1/chat/completions", json=asked, timeout=120).json()
    sources = answer["mindfu"]["sources"]
    assert sources and sources[0]["name"] == "document.pdf", json.dumps(sources)
    assert sources[0]["document_id"] == uploaded.json()["id"] and "pier 19" in sources[0]["excerpt"]
