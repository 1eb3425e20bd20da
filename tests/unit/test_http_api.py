"""The OpenAI facade over the scripted engine: wire shapes, errors, auth and limits, read with the SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mindfu_core import ToolCall
from tests.fakes import Reply, ScriptedEngine

USER = [{"role": "user", "content": "hi there"}]


def sdk(client: Any, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def test_chat_completion_parses_with_the_sdk_types(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="Paris is the capital.")])) as client:
        reply = sdk(client).chat.completions.create(model="scripted", messages=USER)
    assert isinstance(reply, ChatCompletion)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.content == "Paris is the capital."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (4, 4, 8)


def test_stream_is_sse_chunks_ending_with_done(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="a b c")])) as client:
        raw = client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": USER,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        assert raw.status_code == 200
        assert raw.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in raw.text.split("\n\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c"
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
            "stop"
        ]
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 3
        assert all(c.usage is None for c in chunks[:-1])
        assert len({c.id for c in chunks}) == 1

        streamed = sdk(client).chat.completions.create(model="scripted", messages=USER, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "a b c"


def test_tool_calls_on_the_wire(make_client: Any) -> None:
    call = ToolCall(id="call_abc", name="get_weather", arguments='{"city": "Paris"}')
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with make_client(ScriptedEngine([Reply(tool_calls=(call,))])) as client:
        reply = sdk(client).chat.completions.create(model="scripted", messages=USER, tools=tools)  # type: ignore[arg-type]
        message = reply.choices[0].message
        assert reply.choices[0].finish_reason == "tool_calls"
        assert message.tool_calls is not None
        assert message.tool_calls[0].function.name == "get_weather"
        assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
        stream = sdk(client).chat.completions.create(
            model="scripted", messages=USER, tools=tools, stream=True
        )  # type: ignore[arg-type]
        deltas = [c.choices[0].delta for c in stream if c.choices]
        streamed = [tc for d in deltas for tc in d.tool_calls or []]
        assert streamed[0].index == 0 and streamed[0].id == "call_abc"
        assert streamed[0].function is not None and streamed[0].function.name == "get_weather"


def test_text_completions(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="upon a time")])) as client:
        reply = sdk(client).completions.create(model="scripted", prompt="Once")
        assert reply.object == "text_completion"
        assert reply.choices[0].text == "upon a time"
        chunks = list(sdk(client).completions.create(model="scripted", prompt="Once", stream=True))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "upon a time"


def test_models(make_client: Any) -> None:
    with make_client() as client:
        models = sdk(client).models.list()
        assert [m.id for m in models.data] == ["scripted"]
        assert sdk(client).models.retrieve("scripted").owned_by == "mindfu"
        with pytest.raises(openai.NotFoundError):
            sdk(client).models.retrieve("nope")


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "scripted", "messages": "hello"}, 400, "messages"),
        ({"model": "scripted", "messages": USER, "temperature": "hot"}, 400, "temperature"),
        ({"model": "scripted", "messages": USER, "temperature": 7}, 400, "temperature"),
        ({"model": "scripted", "messages": USER, "max_tokens": "many"}, 400, "max_tokens"),
        ({"model": "scripted", "messages": USER, "n": 99}, 400, "n"),
        ({"model": "scripted"}, 400, "messages"),
        ({"model": "scripted", "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        ({"model": "gpt-9", "messages": USER}, 404, "model"),
        (
            {"model": "scripted", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            400,
            "messages[0].content",
        ),
        ({"model": "scripted", "messages": USER, "tool_choice": "required"}, 400, "tool_choice"),
    ],
)
def test_bad_requests_get_openai_error_objects(
    make_client: Any, body: Any, status: int, param: str | None
) -> None:
    with make_client() as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param


def test_invalid_json_is_400(make_client: Any) -> None:
    with make_client() as client:
        response = client.post(
            "/v1/chat/completions",
            content=b'{"model": "scripted",',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in response.json()["error"]["message"]


def test_unknown_fields_are_tolerated(make_client: Any) -> None:
    with make_client() as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": USER,
                "metadata": {"a": 1},
                "store": False,
                "x_future": [1],
            },
        )
    assert response.status_code == 200


def test_context_length_exceeded(make_client: Any) -> None:
    with (
        make_client(ScriptedEngine(context_length=10)) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        sdk(client).chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "w " * 50}]
        )
    assert raised.value.code == "context_length_exceeded"


def test_body_over_the_limit_is_413(make_client: Any) -> None:
    with make_client(http={"max_body_bytes": 2048}) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": [{"role": "user", "content": "x" * 5000}]},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_is_an_openai_404(make_client: Any) -> None:
    with make_client() as client:
        response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_engine_failure_hides_details_behind_a_request_id(make_client: Any) -> None:
    class Broken(ScriptedEngine):
        async def complete(self, request: Any) -> Any:
            raise RuntimeError("secret internal detail")

    with make_client(Broken()) as client:
        response = client.post("/v1/chat/completions", json={"model": "scripted", "messages": USER})
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert "secret" not in message
    assert response.headers["x-request-id"] in message


def test_error_mid_stream_ends_with_an_error_event(make_client: Any) -> None:
    class FailsMidway(ScriptedEngine):
        async def stream(self, request: Any) -> Any:
            from mindfu_core import ChatDelta, EngineFailure

            yield ChatDelta(content="partial")
            raise EngineFailure("decode failed")

    with make_client(FailsMidway()) as client:
        raw = client.post(
            "/v1/chat/completions", json={"model": "scripted", "messages": USER, "stream": True}
        )
        assert raw.status_code == 200
        assert '"error"' in raw.text
        assert raw.text.rstrip().endswith("data: [DONE]")
        with pytest.raises(openai.APIError):
            list(sdk(client).chat.completions.create(model="scripted", messages=USER, stream=True))


def test_overloaded_is_429_with_retry_after(make_client: Any) -> None:
    class Busy(ScriptedEngine):
        async def complete(self, request: Any) -> Any:
            from mindfu_core import Overloaded

            raise Overloaded("all slots busy", retry_after=2)

    with make_client(Busy()) as client:
        response = client.post("/v1/chat/completions", json={"model": "scripted", "messages": USER})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_api_keys(make_client: Any) -> None:
    with make_client(api_keys="k1,k2") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health/ready").status_code == 200
        missing = client.get("/v1/models")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_api_key"
        assert client.get("/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer k2"}).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            sdk(client, key="wrong").models.list()
        assert sdk(client, key="k1").models.list().data


def test_api_keys_file(make_client: Any, tmp_path: Any) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# operators\nfile-key\n\n")
    with make_client(api_keys_file=keys) as client:
        assert client.get("/v1/models", headers={"Authorization": "Bearer file-key"}).status_code == 200
        assert client.get("/v1/models").status_code == 401


def test_health_ready_reports_engine_stats(make_client: Any, topology: str) -> None:
    with make_client() as client:
        body = client.get("/health/ready").json()
    assert body["status"] == "ready"
    if topology == "gateway":  # the core's detail, and the core itself
        assert body["role"] == "gateway" and body["core"]["status"] == "ready"
        assert body["core"]["address"].startswith("127.0.0.1:")
    assert body["engines"][0]["model"] == "scripted"
    assert {"slots", "active", "queued", "tokens_generated_total"} <= set(body["engines"][0])


def test_openapi_docs_are_served(make_client: Any) -> None:
    with make_client() as client:
        assert client.get("/docs").status_code == 200
        assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]


#: (method, path, status) -> the wire model /openapi.json must name for that answer
DOCUMENTED_RESPONSES = {
    ("get", "/v1/models", "200"): "ModelList",
    ("get", "/v1/models/{model_id}", "200"): "ModelObject",
    ("post", "/v1/chat/completions/count_tokens", "200"): "TokenCount",
    ("get", "/v1/documents", "200"): "DocumentList",
    ("get", "/v1/documents/defaults", "200"): "DocumentDefaults",
    ("post", "/v1/documents/upload", "201"): "DocumentIngested",
    ("post", "/v1/documents", "200"): "DocumentIngested",
    ("delete", "/v1/documents/{document_id}", "200"): "DocumentDeleted",
    ("post", "/v1/retrieve", "200"): "ChunkList",
    ("get", "/v1/conversations", "200"): "ConversationList",
    ("get", "/v1/conversations/{conversation_id}", "200"): "ConversationObject",
    ("post", "/v1/conversations/{conversation_id}/feedback", "200"): "FeedbackObject",
    ("get", "/v1/files", "200"): "FileList",
    ("delete", "/v1/files/{file_id}", "200"): "FileDeleted",
    ("post", "/v1/fine_tuning/jobs", "200"): "JobObject",
    ("get", "/v1/fine_tuning/jobs/{job_id}/events", "200"): "EventList",
    ("get", "/v1/fine_tuning/jobs/{job_id}/checkpoints", "200"): "CheckpointList",
}


def test_openapi_documents_the_responses(make_client: Any) -> None:
    """MindFu's own routes name their answers' wire models, whose fields the served objects have."""
    with make_client() as client:
        spec = client.get("/openapi.json").json()
        schemas = spec["components"]["schemas"]
        for (method, path, status), model in DOCUMENTED_RESPONSES.items():
            content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
            assert content["schema"]["$ref"] == f"#/components/schemas/{model}", (method, path)
            assert schemas[model]["properties"], model
        listed = client.get("/v1/models").json()
        assert set(listed) == set(schemas["ModelList"]["properties"])
        assert set(listed["data"][0]) == set(schemas["ModelObject"]["properties"])


def test_llama_cpp_sampling_extensions_reach_the_engine(make_client: Any) -> None:
    engine = ScriptedEngine()
    with make_client(engine) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": USER, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.2},
        )
    assert response.status_code == 200
    sampling = engine.requests[0].sampling
    assert (sampling.top_k, sampling.min_p, sampling.repeat_penalty) == (5, 0.1, 1.2)
