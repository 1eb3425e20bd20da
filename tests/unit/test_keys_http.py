"""API keys over HTTP, in both topologies: the admin API, /v1/me, and each route's scope."""

from __future__ import annotations

from typing import Any

import pytest

ROOT = {"Authorization": "Bearer root-key"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create(client: Any, tenant: str, *scopes: str, headers: dict[str, str] = ROOT) -> Any:
    return client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)}, headers=headers)


def test_an_admin_creates_lists_and_revokes_keys(make_client: Any) -> None:
    with make_client(api_keys="root-key") as client:
        made = create(client, "acme", "chat", "documents:read")
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["object"] == "api_key" and body["tenant"] == "acme"
        assert body["scopes"] == ["chat", "documents:read"] and body["key"].startswith("mf_")
        assert body["revoked_at"] is None and body["prefix"] == body["key"][:10]
        me = client.get("/v1/me", headers=bearer(body["key"])).json()
        assert me == {
            "object": "principal",
            "key_id": body["id"],
            "tenant": "acme",
            "scopes": ["chat", "documents:read"],
        }
        listed = client.get("/v1/admin/keys", headers=ROOT).json()["data"]
        assert [k["id"] for k in listed] == [body["id"]] and "key" not in listed[0]
        revoked = client.delete(f"/v1/admin/keys/{body['id']}", headers=ROOT)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        gone = client.get("/v1/models", headers=bearer(body["key"]))
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "revoked_api_key"
        assert client.delete("/v1/admin/keys/key_missing", headers=ROOT).status_code == 404


def test_each_route_needs_its_scope(make_client: Any) -> None:
    with make_client(api_keys="root-key") as client:
        chat = bearer(create(client, "acme", "chat").json()["key"])
        reader = bearer(create(client, "acme", "documents:read").json()["key"])
        assert client.get("/v1/models", headers=chat).status_code == 200
        assert client.get("/v1/documents/defaults", headers=chat).status_code == 200  # any key reads them
        denied = client.get("/v1/documents", headers=chat)
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "insufficient_scope"
        assert "documents:read" in denied.json()["error"]["message"]
        assert client.get("/v1/documents", headers=reader).status_code == 200
        upload = client.post("/v1/documents", json={"content": "x", "name": "x.txt"}, headers=reader)
        assert upload.status_code == 403
        assert client.get("/v1/models", headers=reader).status_code == 403
        for path in ("/v1/conversations", "/v1/fine_tuning/jobs", "/v1/admin/keys"):
            assert client.get(path, headers=chat).status_code == 403, path
        assert create(client, "acme", "chat", headers=chat).status_code == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tenant": "acme", "scopes": ["root"]}, "scopes"),
        ({"tenant": "acme", "scopes": []}, "scopes"),
        ({"tenant": "no spaces", "scopes": ["chat"]}, "tenant"),
        ({"tenant": "acme", "scopes": ["chat"], "extra": 1}, "extra"),
    ],
)
def test_a_bad_key_request_is_a_400_naming_the_field(
    make_client: Any, body: dict[str, Any], param: str
) -> None:
    with make_client(api_keys="root-key") as client:
        answer = client.post("/v1/admin/keys", json=body, headers=ROOT)
    assert answer.status_code == 400, answer.text
    assert param in (answer.json()["error"]["param"] or "")


def test_a_server_without_keys_answers_as_the_default_tenant(make_client: Any) -> None:
    with make_client() as client:
        me = client.get("/v1/me").json()
        assert me["tenant"] == "default" and me["key_id"] is None and "admin" in me["scopes"]
        made = client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["chat"]})
        assert made.status_code == 201
        # a stored key closes the server: calls without a key are refused from then on
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers=bearer(made.json()["key"])).status_code == 200


def test_a_key_past_its_tokens_a_minute_gets_429_with_the_wait(make_client: Any) -> None:
    with make_client(api_keys="root-key", limits={"key_tokens_per_minute": 5}) as client:
        chat = bearer(create(client, "acme", "chat").json()["key"])
        body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=body, headers=chat).status_code == 200
        refused = client.post("/v1/chat/completions", json=body, headers=chat)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (
            client.post("/v1/chat/completions", json=body, headers=ROOT).status_code == 200
        )  # its own share
