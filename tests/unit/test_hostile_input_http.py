"""Input that used to cost minutes or end in a 500, in both topologies: each a 4xx error object naming the
field, in the shape of the API it came to (OpenAI's, Anthropic's)."""

from __future__ import annotations

import json
from typing import Any

import pytest

SURROGATE = "caf\ud800e"  # JSON lets a client send a lone surrogate; no UTF-8 encoder takes it
USER = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"
BAD_MESSAGES = [{"role": "user", "content": SURROGATE}]


def post(client: Any, path: str, body: dict[str, Any]) -> Any:
    # json.dumps escapes the lone surrogate as \ud800, as a client's JSON encoder does
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"model": "scripted", "messages": BAD_MESSAGES}, "messages[0].content"),
        (CHAT, {"model": "scripted", "messages": USER, "stop": [SURROGATE]}, "stop"),
        (CHAT, {"model": "scripted", "messages": USER, "user": SURROGATE}, "user"),
        (f"{CHAT}/count_tokens", {"model": "scripted", "messages": BAD_MESSAGES}, "messages[0].content"),
        ("/v1/completions", {"model": "scripted", "prompt": SURROGATE}, "prompt"),
        ("/v1/responses", {"model": "scripted", "input": SURROGATE}, "messages[0].content"),
        ("/v1/embeddings", {"model": "hash-bow", "input": ["ok", SURROGATE]}, "input[1]"),
        ("/v1/documents", {"content": SURROGATE, "name": "x.txt"}, "content"),
        ("/v1/documents", {"content": "fine", "name": "x.txt", "metadata": {"k": SURROGATE}}, "metadata"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    make_client: Any, path: str, body: dict[str, Any], param: str
) -> None:
    with make_client() as client:
        answer = post(client, path, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert "surrogate" in error["message"] or "unicode string" in error["message"]


def test_anthropic_gets_its_own_error_shape(make_client: Any) -> None:
    body = {"model": "scripted", "max_tokens": 5, "messages": BAD_MESSAGES}
    with make_client() as client:
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            answer = post(client, path, body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["type"] == "error"
            assert answer.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": "x"}] * 100_000, "messages"),
        ([{"role": "user", "content": "x" * 3_500_000}], "messages[0].content"),
    ],
    ids=["100k messages", "a 3.5 MB string"],
)
def test_what_would_cost_minutes_is_refused_before_any_prompt_is_built(
    make_client: Any, messages: list[dict[str, str]], param: str
) -> None:
    with make_client() as client:
        answer = post(client, CHAT, {"model": "scripted", "messages": messages})
        assert answer.status_code == 400, answer.text[:300]
        assert answer.json()["error"]["param"] == param
        engine = client.get("/health/ready").json()["engines"][0]
        assert engine["requests_total"] == 0  # no engine saw it


def test_ready_shows_error_text_only_to_a_key_that_may_see_it(make_client: Any) -> None:
    from tests.loopback import core_services

    with make_client(api_keys="root-key") as client:
        log = core_services(client).completion_log
        log._last_error = "connection to db.internal:5432 refused"  # type: ignore[union-attr]
        anyone = client.get("/health/ready").json()
        assert "db.internal" not in json.dumps(anyone)
        assert "last_error_at" in anyone["conversation_log"]
        admin = client.get("/health/ready", headers={"Authorization": "Bearer root-key"}).json()
        assert admin["conversation_log"]["last_error"] == "connection to db.internal:5432 refused"
