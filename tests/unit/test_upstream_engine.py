"""The OpenAI upstream engine's own logic against scripted HTTP answers: retries only before the first
token, upstream errors in MindFu's terms, tool-call pieces passed through, servers without usage."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from mindfu_adapters.llm.openai_http import OpenAIUpstreamEngine, UpstreamConfig
from mindfu_core import (
    ChatRequest,
    ContextLengthExceeded,
    EngineFailure,
    FinishReason,
    InvalidRequest,
    Message,
    Overloaded,
    Role,
    SamplingParams,
    ToolCallAssembler,
    UpstreamUnavailable,
)

Handler = Callable[[httpx.Request], httpx.Response]
ASK = ChatRequest(
    model="m", messages=(Message(role=Role.USER, content="hi"),), sampling=SamplingParams(max_tokens=8)
)


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def engine(handler: Handler, **config: Any) -> OpenAIUpstreamEngine:
    settings = {"base_url": "http://up/v1", "model_id": "m", "retries": 2, "retry_backoff_s": 0.0, **config}
    return OpenAIUpstreamEngine(UpstreamConfig(**settings), transport=httpx.MockTransport(handler))


async def test_the_body_and_the_stream_pass_through() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
        return httpx.Response(200, content=sse(text_chunk("Hel"), text_chunk("lo", "stop"), usage))

    up = engine(handler, upstream_model="served-name", api_key="k")
    result = await up.complete(ASK)
    assert result.choices[0].message.content == "Hello"
    assert result.choices[0].finish_reason is FinishReason.STOP
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 2)
    body = seen[0]
    assert body["model"] == "served-name" and body["stream"] is True and body["max_tokens"] == 8
    assert body["stream_options"] == {"include_usage": True}
    await up.aclose()


async def test_the_stop_string_a_vllm_upstream_names_is_kept() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        stopped = text_chunk("lo", "stop")
        stopped["choices"][0]["stop_reason"] = "END"  # vLLM's server: the stop string that matched
        ended = text_chunk("", "stop")
        ended["choices"][0]["stop_reason"] = 2  # ... or the stop token's id
        return httpx.Response(200, content=sse(stopped if "END" in request.content.decode() else ended))

    named = await engine(handler).complete(replace(ASK, sampling=replace(ASK.sampling, stop=("END",))))
    assert (named.choices[0].finish_reason, named.choices[0].stop_sequence) == (FinishReason.STOP, "END")
    unnamed = await engine(handler).complete(ASK)
    assert unnamed.choices[0].stop_sequence is None


async def test_server_errors_before_the_first_token_are_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return httpx.Response(503, json={"error": {"message": "warming up"}})
        usage = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
        return httpx.Response(200, content=sse(text_chunk("ok", "stop"), usage))

    result = await engine(handler).complete(ASK)
    assert calls == 3 and result.choices[0].message.content == "ok"


async def test_an_unreachable_upstream_is_unavailable_with_retry_after() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UpstreamUnavailable) as down:
        await engine(handler, retries=1).complete(ASK)
    assert calls == 2 and down.value.retry_after is not None


async def test_a_stream_that_breaks_after_its_first_token_is_never_retried() -> None:
    calls = 0

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield sse(text_chunk("partial"), done=False)
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, stream=Broken())

    up = engine(handler)
    received = []
    with pytest.raises(EngineFailure):
        async for delta in up.stream(ASK):
            received.append(delta.content)
    assert calls == 1 and received == ["", "partial"]  # accepted (an empty delta), then the token


@pytest.mark.parametrize(
    ("status", "message", "headers", "error"),
    [
        (400, "This model's maximum context length is 1024 tokens", {}, ContextLengthExceeded),
        (400, "temperature must be at most 2", {}, InvalidRequest),
        (429, "slow down", {"retry-after": "7"}, Overloaded),
        (401, "bad key", {}, EngineFailure),
        (500, "boom", {}, EngineFailure),
    ],
)
async def test_upstream_errors_in_mindfus_terms(
    status: int, message: str, headers: dict[str, str], error: type[Exception]
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, json={"error": {"message": message}}, headers=headers)

    with pytest.raises(error) as caught:
        await engine(handler).complete(ASK)
    assert calls == 1  # none of these is retried
    if status == 400:
        assert message in str(caught.value)
    if status == 429:
        assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]


async def test_tool_call_pieces_pass_through_with_the_name_once() -> None:
    def call(arguments: str, *, head: bool) -> dict[str, Any]:
        piece: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
        if head:  # some servers repeat the id and name on every piece
            piece.update(id="call_1", type="function", function={"name": "f", "arguments": arguments})
        return {"choices": [{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}]}

    def handler(request: httpx.Request) -> httpx.Response:
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        return httpx.Response(
            200, content=sse(call('{"a"', head=True), call(": 1", head=True), call("}", head=False), end)
        )

    deltas = [d async for d in engine(handler).stream(ASK)]
    pieces = [p for d in deltas for p in d.tool_call_deltas]
    assert [(p.id, p.name) for p in pieces] == [("call_1", "f"), (None, None), (None, None)]
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    (whole,) = assembler.calls()
    assert (whole.id, whole.name, json.loads(whole.arguments)) == ("call_1", "f", {"a": 1})
    assert [d.finish_reason for d in deltas if d.finish_reason] == [FinishReason.TOOL_CALLS]


async def test_without_usage_the_prompt_is_counted_upstream_and_an_empty_stream_is_asked_again() -> None:
    requests: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append((request.url.path, body))
        if request.url.path == "/extras/tokenize":
            return httpx.Response(200, json={"tokens": list(range(11))})
        if request.url.path == "/tokenize":
            return httpx.Response(404)
        if body.get("stream") and "too long" in body["messages"][0]["content"]:
            return httpx.Response(200, content=b"")  # llama-cpp-python's server rejecting in a stream
        if not body.get("stream"):
            return httpx.Response(400, json={"error": {"message": "exceed context window of 1024"}})
        return httpx.Response(200, content=sse(text_chunk("a"), text_chunk("b", "length")))

    up = engine(handler)
    result = await up.complete(ASK)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 2)
    too_long = ChatRequest(model="m", messages=(Message(role=Role.USER, content="too long"),))
    with pytest.raises(ContextLengthExceeded):
        await up.complete(too_long)
    assert [path for path, _ in requests][-2:] == ["/v1/chat/completions", "/v1/chat/completions"]


async def test_settings_alone_select_the_upstream_engine(tmp_path: Any) -> None:
    from mindfu_adapters.container import build_container, preflight, served_model_id
    from mindfu_adapters.settings import Settings
    from mindfu_core import ConfigurationError

    llm = {"backend": "openai", "base_url": "http://vllm:8000/v1", "upstream_model": "org/Devstral"}
    settings = Settings(data_dir=tmp_path, llm=llm)  # type: ignore[arg-type]
    preflight(settings)
    assert served_model_id(settings) == "org/Devstral"
    container = build_container(settings)
    built = await container.llm_engine()  # type: ignore[misc]
    try:
        assert isinstance(built, OpenAIUpstreamEngine)
        info = built.model_info()
        assert (info.id, info.engine, built.stats().slots) == ("org/Devstral", "openai", 16)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="MINDFU_LLM__BASE_URL"):
        preflight(Settings(data_dir=tmp_path, llm={"backend": "openai"}))  # type: ignore[arg-type]


async def test_unset_sampling_takes_the_models_defaults_or_the_upstreams() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=sse(text_chunk("ok", "stop")))

    plain, tuned = engine(handler), engine(handler, temperature=0.15, top_p=0.9)
    await plain.complete(ASK)
    await tuned.complete(ASK)
    await tuned.complete(replace(ASK, sampling=SamplingParams(max_tokens=8, temperature=0.7)))
    sent = [body for body in seen if body.get("stream")]  # not the token-counting probes
    assert "temperature" not in sent[0] and "top_p" not in sent[0]  # the upstream's own defaults
    assert (sent[1]["temperature"], sent[1]["top_p"]) == (0.15, 0.9)
    assert (sent[2]["temperature"], sent[2]["top_p"]) == (0.7, 0.9)
    await plain.aclose()
    await tuned.aclose()
