"""Two tenants over HTTP, in both topologies: neither sees, changes or continues the other's conversations
and stored responses; each route answers 404 for the other's ids, and lists and exports hold none of them."""

from __future__ import annotations

from typing import Any

from tests.fakes import Reply, ScriptedEngine

ROOT = {"Authorization": "Bearer root-key"}
SCOPES = ["chat", "conversations:read"]


def key_of(client: Any, tenant: str) -> dict[str, str]:
    made = client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": SCOPES}, headers=ROOT)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def chat(
    client: Any, headers: dict[str, str], *messages: tuple[str, str], conversation: str | None = None
) -> Any:
    extra = {"X-MindFu-Conversation-Id": conversation} if conversation else {}
    body = {"model": "scripted", "messages": [{"role": r, "content": c} for r, c in messages]}
    answer = client.post("/v1/chat/completions", json=body, headers={**headers, **extra})
    assert answer.status_code == 200, answer.text
    return answer


def ids(client: Any, headers: dict[str, str]) -> list[str]:
    return [c["id"] for c in client.get("/v1/conversations", headers=headers).json()["data"]]


def test_neither_tenant_sees_changes_or_continues_the_others(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="noted")])
    with make_client(engine, api_keys="root-key") as client:
        acme, globex = key_of(client, "acme"), key_of(client, "globex")
        chat(client, acme, ("user", "acme's secret plan"), conversation="conv_shared")
        stored = client.post(
            "/v1/responses", json={"model": "scripted", "input": "acme remembers"}, headers=acme
        )
        assert stored.status_code == 200, stored.text
        response_id = stored.json()["id"]
        completion = client.get(f"/v1/responses/{response_id}", headers=acme)
        assert completion.status_code == 200
        acme_ids = ids(client, acme)
        assert "conv_shared" in acme_ids and len(acme_ids) == 2

        # globex, with acme's ids
        assert ids(client, globex) == []
        for method, path in (
            ("GET", "/v1/conversations/conv_shared"),
            ("DELETE", "/v1/conversations/conv_shared"),
            ("GET", f"/v1/responses/{response_id}"),
            ("GET", f"/v1/responses/{response_id}/input_items"),
        ):
            answer = client.request(method, path, headers=globex)
            assert answer.status_code == 404, (method, path, answer.text)
        rated = client.post("/v1/conversations/conv_shared/feedback", json={"rating": -1}, headers=globex)
        assert rated.status_code == 404
        exported = client.get("/v1/conversations/export?format=conversations", headers=globex)
        assert exported.status_code == 200 and exported.text == ""
        follow = client.post(
            "/v1/responses",
            json={"model": "scripted", "input": "what did acme say?", "previous_response_id": response_id},
            headers=globex,
        )
        assert follow.status_code == 404 and follow.json()["error"]["code"] == "response_not_found"
        # naming acme's conversation with another history: acme's stays as it was
        chat(client, globex, ("user", "overwrite it"), conversation="conv_shared")
        mine = ids(client, globex)
        assert len(mine) == 1 and mine[0] != "conv_shared"
        assert client.get(f"/v1/conversations/{mine[0]}", headers=globex).json()["messages"][0][
            "content"
        ] == ("overwrite it")

        # acme's data, untouched
        kept = client.get("/v1/conversations/conv_shared", headers=acme).json()
        assert [m["content"] for m in kept["messages"]] == ["acme's secret plan", "noted"]
        assert kept["feedback"] == []
        assert sorted(ids(client, acme)) == sorted(acme_ids)
        assert mine[0] not in client.get("/v1/conversations/export?format=conversations", headers=acme).text
        # the operator's own key is the default tenant's: it holds neither tenant's data
        assert ids(client, ROOT) == []


DOCUMENT_SCOPES = ["chat", "documents:read", "documents:write"]
FACT = "The lighthouse keeper of Ardnamurchan feeds the cat at seven every evening."


def document_key(client: Any, tenant: str) -> dict[str, str]:
    made = client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": DOCUMENT_SCOPES}, headers=ROOT)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def test_documents_and_collections_are_the_tenants_own(make_client: Any) -> None:
    with make_client(api_keys="root-key") as client:
        acme, globex = document_key(client, "acme"), document_key(client, "globex")
        body = {"content": FACT, "name": "keeper.txt", "collection": "docs"}
        made = client.post("/v1/documents", json=body, headers=acme)
        assert made.status_code == 201, made.text
        document = made.json()
        assert document["collection"] == "docs"  # as the tenant named it
        retrieve = {"query": "who feeds the cat?", "collection": "docs", "min_score": -1}
        assert client.post("/v1/retrieve", json=retrieve, headers=acme).json()["data"]

        assert client.get("/v1/documents", headers=globex).json()["data"] == []
        assert client.get("/v1/documents?collection=docs", headers=globex).json()["data"] == []
        for method in ("GET", "DELETE"):
            assert (
                client.request(method, f"/v1/documents/{document['id']}", headers=globex).status_code == 404
            )
        assert client.post("/v1/retrieve", json=retrieve, headers=globex).json()["data"] == []
        ask = {
            "model": "scripted",
            "messages": [{"role": "user", "content": "who feeds the cat?"}],
            "mindfu": {"rag": {"collection": "docs", "min_score": -1}},
        }
        grounded = client.post("/v1/chat/completions", json=ask, headers=globex)
        assert grounded.status_code == 200 and not grounded.json().get("mindfu", {}).get("sources")
        mine = client.post("/v1/chat/completions", json=ask, headers=acme).json()
        assert mine["mindfu"]["sources"][0]["document_id"] == document["id"]
        # the same content in a collection of the same name: globex's own, not a duplicate of acme's
        theirs = client.post("/v1/documents", json=body, headers=globex)
        assert theirs.status_code == 201 and theirs.json()["id"] != document["id"]
        assert not theirs.json().get("duplicate")
        assert [d["id"] for d in client.get("/v1/documents", headers=acme).json()["data"]] == [document["id"]]
        assert client.delete(f"/v1/documents/{document['id']}", headers=acme).status_code == 200
        assert client.post("/v1/retrieve", json=retrieve, headers=globex).json()["data"]  # its own, untouched
        # a name a stored collection could be confused with is refused
        bad = client.post("/v1/documents", json={**body, "collection": "acme\x1fdocs"}, headers=globex)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "collection"


EXAMPLE = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_training_files_and_jobs_are_the_tenants_own(make_client: Any) -> None:
    import json as jsonlib

    with make_client(api_keys="root-key") as client:
        keys = {}
        for tenant in ("acme", "globex"):
            made = client.post(
                "/v1/admin/keys", json={"tenant": tenant, "scopes": ["training"]}, headers=ROOT
            )
            keys[tenant] = {"Authorization": f"Bearer {made.json()['key']}"}
        data = "\n".join(jsonlib.dumps(EXAMPLE) for _ in range(3)).encode()
        uploaded = client.post(
            "/v1/files",
            files={"file": ("train.jsonl", data)},
            data={"purpose": "fine-tune"},
            headers=keys["acme"],
        )
        assert uploaded.status_code == 200, uploaded.text
        file_id = uploaded.json()["id"]
        assert [f["id"] for f in client.get("/v1/files", headers=keys["acme"]).json()["data"]] == [file_id]
        assert client.get("/v1/files", headers=keys["globex"]).json()["data"] == []
        for method in ("GET", "DELETE"):
            assert client.request(method, f"/v1/files/{file_id}", headers=keys["globex"]).status_code == 404
        job = client.post(
            "/v1/fine_tuning/jobs",
            json={"model": "scripted", "training_file": file_id},
            headers=keys["globex"],
        )
        assert job.status_code in (400, 404), job.text  # another tenant's file is not found for it
        assert client.get("/v1/fine_tuning/jobs", headers=keys["globex"]).json()["data"] == []
        assert client.get(f"/v1/files/{file_id}", headers=keys["acme"]).status_code == 200
