"""Documents, retrieval, embeddings and grounded chat over HTTP (scripted engine, hash embedder, SQLite)."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from mindfu_core import Role
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.documents import encrypt_pdf, make_docx, make_pdf

FACT = "The Zorblatt reactor on Kepler station runs on purple helium harvested every Tuesday."
ASK = [{"role": "user", "content": "What does the Zorblatt reactor run on?"}]


def sdk(client: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key="k", http_client=client, max_retries=0)


def upload(client: Any, name: str, data: bytes, **form: str) -> Any:
    return client.post("/v1/documents/upload", files={"file": (name, data)}, data=form)


def test_upload_list_show_duplicate_delete(make_client: Any) -> None:
    with make_client() as client:
        first = upload(client, "notes.md", f"# Notes\n\n{FACT}\n".encode(), metadata='{"team": "ops"}')
        assert first.status_code == 201, first.text
        doc = first.json()
        assert doc["object"] == "document" and doc["duplicate"] is False
        assert doc["name"] == "notes.md" and doc["collection"] == "default"
        assert doc["chunk_count"] == 1 and doc["metadata"] == {"team": "ops"}
        assert doc["media_type"] == "text/markdown" and len(doc["sha256"]) == 64

        again = upload(client, "renamed.md", f"# Notes\n\n{FACT}\n".encode())
        assert again.status_code == 200
        assert again.json()["duplicate"] is True and again.json()["id"] == doc["id"]

        assert client.get(f"/v1/documents/{doc['id']}").json()["name"] == "notes.md"
        listed = client.get("/v1/documents").json()
        assert [d["id"] for d in listed["data"]] == [doc["id"]] and listed["has_more"] is False

        deleted = client.delete(f"/v1/documents/{doc['id']}")
        gone_doc = {k: v for k, v in doc.items() if k != "duplicate"}
        assert deleted.json() == {
            "id": doc["id"],
            "object": "document.deleted",
            "deleted": True,
            "document": gone_doc,  # what was deleted, as it was
        }
        gone = client.get(f"/v1/documents/{doc['id']}")
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"
        assert client.delete(f"/v1/documents/{doc['id']}").status_code == 404
        assert client.post("/v1/retrieve", json={"query": "Zorblatt reactor"}).json()["data"] == []


def test_pagination_newest_first_and_collections(make_client: Any) -> None:
    with make_client() as client:
        ids = [
            client.post("/v1/documents", json={"content": f"document number {i}", "name": f"d{i}"}).json()[
                "id"
            ]
            for i in range(5)
        ]
        other = client.post("/v1/documents", json={"content": "elsewhere", "collection": "b"}).json()
        page = client.get("/v1/documents", params={"limit": 2, "collection": "default"}).json()
        assert [d["id"] for d in page["data"]] == ids[::-1][:2] and page["has_more"] is True
        rest = client.get("/v1/documents", params={"limit": 10, "offset": 2, "collection": "default"}).json()
        assert [d["id"] for d in rest["data"]] == ids[::-1][2:] and rest["has_more"] is False
        assert [d["id"] for d in client.get("/v1/documents?collection=b").json()["data"]] == [other["id"]]
        assert client.get("/v1/documents?limit=0").status_code == 400
        # the cursor continues where the page ended; a made-up one is refused plainly
        follow = client.get(
            "/v1/documents", params={"limit": 2, "collection": "default", "after": page["next_cursor"]}
        ).json()
        assert [d["id"] for d in follow["data"]] == ids[::-1][2:4] and follow["next_cursor"]
        last = client.get(
            "/v1/documents", params={"limit": 2, "collection": "default", "after": follow["next_cursor"]}
        ).json()
        assert [d["id"] for d in last["data"]] == ids[:1] and last["next_cursor"] is None
        bogus = client.get("/v1/documents", params={"after": "not-a-cursor"})
        assert bogus.status_code == 400 and bogus.json()["error"]["param"] == "after"


def test_json_documents_with_own_chunking(make_client: Any) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    with make_client() as client:
        small = client.post(
            "/v1/documents", json={"content": text, "name": "w", "chunk": {"size": 200, "overlap": 20}}
        ).json()
        assert small["chunk_count"] > 10
        bad = client.post(
            "/v1/documents", json={"content": text + "!", "chunk": {"size": 100, "overlap": 90}}
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "chunk"
        assert client.post("/v1/documents", json={"content": ""}).status_code == 400
        assert client.post("/v1/documents", json={"content": "x", "bogus": 1}).status_code == 400


def test_raw_text_chunked_as_the_description_says_or_kept_whole(make_client: Any) -> None:
    """The description's raw-text upload verbatim (``"chunk": true``: the server's 512/50 policy), and
    ``"chunk": false``: one chunk, refused with 413 (nothing stored) when the embedder would cut it off."""
    paragraphs = "\n\n".join(f"Paragraph {i}: {FACT}" for i in range(8))  # ~800 chars, ~120 words
    with make_client() as client:
        seed = client.post(
            "/v1/documents",
            json={"content": "Your document content here", "metadata": {"source": "manual"}, "chunk": True},
        )
        assert seed.status_code == 201, seed.text
        assert seed.json()["chunk_count"] == 1 and seed.json()["metadata"] == {"source": "manual"}
        chunked = client.post("/v1/documents", json={"content": paragraphs, "chunk": True}).json()
        assert chunked["chunk_count"] == 2  # 512-character chunks
        whole = client.post(
            "/v1/documents", json={"content": paragraphs, "chunk": False, "collection": "whole"}
        ).json()
        assert whole["chunk_count"] == 1
        found = client.post("/v1/retrieve", json={"query": FACT, "collection": "whole", "top_k": 5}).json()
        assert [hit["text"] for hit in found["data"]] == [paragraphs]
        upload_whole = upload(client, "notes.md", paragraphs.encode(), chunk="false", collection="files")
        assert upload_whole.json()["chunk_count"] == 1, upload_whole.text

        too_long = " ".join(f"word{i}" for i in range(300))  # the hash embedder reads 256 words of a text
        refused = client.post("/v1/documents", json={"content": too_long, "chunk": False, "collection": "x"})
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "payload_too_large" and "300 tokens" in error["message"]
        assert "at most 256" in error["message"] and "chunk: true" in error["message"]
        assert client.get("/v1/documents?collection=x").json()["data"] == []
        assert client.post("/v1/documents", json={"content": "x", "chunk": "no"}).status_code == 400
        assert client.post("/v1/documents", json={"content": "x", "chunk": 0}).status_code == 400


def test_pdf_and_docx_keep_pages_and_names_are_not_paths(make_client: Any) -> None:
    pdf = make_pdf(["Cover page about nothing.", FACT])
    with make_client() as client:
        doc = upload(client, "../../etc/report.pdf", pdf).json()
        assert doc["name"] == "report.pdf" and doc["media_type"] == "application/pdf"
        hits = client.post(
            "/v1/retrieve", json={"query": "Zorblatt reactor purple helium", "top_k": 1}
        ).json()
        assert hits["data"][0]["page"] == 2 and hits["data"][0]["name"] == "report.pdf"
        docx = upload(client, "C:\\Users\\me\\memo.docx", make_docx(["Memo", FACT + " Docx edition."]))
        assert docx.status_code == 201 and docx.json()["name"] == "memo.docx"


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("x.pdf", b"\x00\x01\x02\xff" * 100, 415, "not a supported"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage", 422, "PDF"),
        ("empty.txt", b"   \n\n  ", 422, "no text"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    make_client: Any, name: str, data: bytes, status: int, words: str
) -> None:
    with make_client() as client:
        response = upload(client, name, data)
        assert response.status_code == status, response.text
        assert words.lower() in response.json()["error"]["message"].lower()
        assert client.get("/v1/documents").json()["data"] == []


def test_encrypted_pdf_is_422(make_client: Any) -> None:
    with make_client() as client:
        response = upload(client, "locked.pdf", encrypt_pdf(make_pdf([FACT])))
        assert response.status_code == 422 and "encrypted" in response.json()["error"]["message"]


def test_size_limit_is_413(make_client: Any) -> None:
    with make_client(rag={"max_upload_bytes": 2048}) as client:
        response = upload(client, "big.txt", b"a " * 1500)
        assert response.status_code == 413
        huge = upload(client, "huge.txt", b"a " * 2_000_000)
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
        assert client.get("/v1/documents").json()["data"] == []


def test_bad_metadata_is_400(make_client: Any) -> None:
    with make_client() as client:
        response = upload(client, "a.txt", b"hello", metadata="[1, 2]")
        assert response.status_code == 400 and response.json()["error"]["param"] == "metadata"
        assert upload(client, "a.txt", b"hello", metadata="{nope").status_code == 400


def test_chat_is_grounded_and_reports_sources(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Purple helium [1].")])
    with make_client(engine) as client:
        doc = upload(client, "station.txt", f"Unrelated intro.\n\n{FACT}".encode()).json()
        reply = client.post("/v1/chat/completions", json={"model": "scripted", "messages": ASK}).json()
        sources = reply["mindfu"]["sources"]
        assert sources[0]["document_id"] == doc["id"] and sources[0]["name"] == "station.txt"
        assert sources[0]["number"] == 1 and "Zorblatt" in sources[0]["excerpt"]
        assert set(sources[0]) == {"number", "document_id", "name", "page", "chunk_index", "score", "excerpt"}
        turn = engine.requests[-1].messages[-1]
        assert turn.role is Role.USER and FACT in (turn.content or "")
        assert "<context>" in (turn.content or "") and "not instructions" in (turn.content or "")

        plain = client.post(
            "/v1/chat/completions", json={"model": "scripted", "messages": ASK, "mindfu": {"rag": False}}
        ).json()
        assert "sources" not in plain["mindfu"] and plain["mindfu"]["conversation_id"].startswith("conv_")
        assert engine.requests[-1].messages[-1].content == ASK[-1]["content"]

        elsewhere = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": ASK, "mindfu": {"rag": {"collection": "empty"}}},
        ).json()
        assert "sources" not in elsewhere["mindfu"]


def test_stream_ends_with_a_sources_chunk_before_done(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="Purple helium.")])) as client:
        upload(client, "station.txt", FACT.encode())
        raw = client.post(
            "/v1/chat/completions", json={"model": "scripted", "messages": ASK, "stream": True}
        ).text
        events = [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        last = json.loads(events[-2])
        assert last["choices"] == [] and last["mindfu"]["sources"][0]["name"] == "station.txt"
        ChatCompletionChunk.model_validate(last)
        streamed = list(
            sdk(client).chat.completions.create(model="scripted", messages=ASK, stream=True)  # type: ignore[arg-type]
        )
        assert streamed[-1].model_extra and streamed[-1].model_extra["mindfu"]["sources"]


def test_rag_options_are_validated(make_client: Any) -> None:
    with make_client() as client:
        for rag, param in (({"top_k": 0}, "mindfu.rag.top_k"), ({"min_score": 3}, "mindfu.rag.min_score")):
            response = client.post(
                "/v1/chat/completions", json={"model": "scripted", "messages": ASK, "mindfu": {"rag": rag}}
            )
            assert response.status_code == 400 and response.json()["error"]["param"] == param
        unknown = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": ASK, "mindfu": {"rag": {"topk": 3}}},
        )
        assert unknown.status_code == 400


def test_server_default_can_disable_rag_and_requests_opt_in(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="ok")])
    with make_client(engine, rag={"enabled": False}) as client:
        upload(client, "station.txt", FACT.encode())
        assert (
            "sources"
            not in client.post("/v1/chat/completions", json={"model": "scripted", "messages": ASK}).json()[
                "mindfu"
            ]
        )
        opted = client.post(
            "/v1/chat/completions", json={"model": "scripted", "messages": ASK, "mindfu": {"rag": True}}
        ).json()
        assert opted["mindfu"]["sources"]


def test_retrieve_with_filters_and_threshold(make_client: Any) -> None:
    with make_client() as client:
        a = client.post("/v1/documents", json={"content": FACT, "metadata": {"lang": "en"}}).json()
        client.post("/v1/documents", json={"content": FACT + " Also in French.", "metadata": {"lang": "fr"}})
        found = client.post(
            "/v1/retrieve", json={"query": FACT, "filter": {"metadata": {"lang": "en"}}, "min_score": None}
        ).json()
        assert [h["document_id"] for h in found["data"]] == [a["id"]]
        assert found["data"][0]["metadata"] == {"lang": "en"}
        strict = client.post("/v1/retrieve", json={"query": "completely different words", "min_score": 0.99})
        assert strict.json()["data"] == []


def test_embeddings_float_and_base64(make_client: Any) -> None:
    with make_client() as client:
        out = sdk(client).embeddings.create(model="hash-bow", input=["one two", "three"])
        assert [d.index for d in out.data] == [0, 1] and len(out.data[0].embedding) == 64
        assert out.usage.prompt_tokens > 0 and out.model == "hash-bow"
        raw = client.post(
            "/v1/embeddings", json={"model": "hash-bow", "input": "one two", "encoding_format": "base64"}
        ).json()
        decoded = struct.unpack("<64f", base64.b64decode(raw["data"][0]["embedding"]))
        assert decoded == pytest.approx(out.data[0].embedding, abs=1e-6)
        assert client.post("/v1/embeddings", json={"model": "nope", "input": "x"}).status_code == 404
        assert client.post("/v1/embeddings", json={"model": "hash-bow", "input": []}).status_code == 400
        assert client.post("/v1/embeddings", json={"model": "hash-bow", "input": [[1, 2]]}).status_code == 400
        assert (
            client.post(
                "/v1/embeddings", json={"model": "hash-bow", "input": "x", "dimensions": 8}
            ).status_code
            == 400
        )


def test_an_oversized_chunked_upload_is_413_too(make_client: Any) -> None:
    """No Content-Length to refuse at once: the limit is met while the multipart body is read."""

    def body() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(700):  # 1.4 MB: past the upload route's limit (the upload limit + 1 MiB)
            yield b"a " * 1024
        yield b"\r\n--b--\r\n"

    with make_client(rag={"max_upload_bytes": 2048}, http={"max_body_bytes": 4096}) as client:
        answer = client.post(
            "/v1/documents/upload",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "payload_too_large"
        assert client.get("/v1/documents").json()["data"] == []
