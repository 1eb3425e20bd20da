"""Any OpenAI-compatible server as the engine (``vllm serve``, llama.cpp's servers, Ollama, ...).

Tokens are passed through as the upstream streams them, over a pooled keep-alive connection per slot.
A request is retried only while nothing has reached the client (connection refused, 5xx before the first
byte); after the first token a broken stream is an engine failure. Stopping the stream closes the upstream
connection, which is how these servers learn to stop generating.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from mindfu_adapters.llm.openai_wire import (
    chunk_deltas,
    completion_deltas,
    error_message,
    message_dict,
    request_body,
    status_error,
)
from mindfu_adapters.llm.slots import SlotPool
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    TextRequest,
    ToolSpec,
    Usage,
)
from mindfu_core.errors import ContextLengthExceeded, EngineFailure, MindFuError, UpstreamUnavailable
from mindfu_core.services.collect import collect
from mindfu_core.services.tool_text import tool_schema

log = logging.getLogger(__name__)
#: Where servers count tokens: vLLM (``/tokenize``), llama.cpp's llama-server (``/tokenize``, ``content``),
#: llama-cpp-python's server (``/extras/tokenize``); tried in order, the first that answers is kept.
TOKENIZE_ROUTES: tuple[tuple[str, str], ...] = (
    ("/tokenize", "vllm"),
    ("/tokenize", "llama-server"),
    ("/extras/tokenize", "llama-cpp-python"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamConfig:
    """What the engine needs; the container fills it from settings."""

    base_url: str  # the upstream's OpenAI API root, e.g. http://127.0.0.1:8000/v1
    model_id: str  # the id MindFu's clients use
    upstream_model: str | None = None  # the name the upstream knows it by (default: model_id)
    api_key: str | None = None
    context_length: int = 4096
    slots: int = 8  # requests in flight upstream at once
    max_queue: int = 64
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 600.0  # the longest silence between two chunks
    retries: int = 2
    retry_backoff_s: float = 0.5
    # True: a max_tokens beyond the window is left to the upstream (servers lower it, or stop at the end of
    # the window); False: refused here with ContextLengthExceeded, counting the prompt upstream first
    clamp_max_tokens: bool = True
    # what a request that leaves them unset is sent with (None: nothing is sent, the upstream's default)
    temperature: float | None = None
    top_p: float | None = None


class OpenAIUpstreamEngine:
    """``mindfu_core.LLMEngine`` over an OpenAI-compatible HTTP server."""

    def __init__(self, config: UpstreamConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._model = config.upstream_model or config.model_id
        self._created = int(time.time())
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
            # the slots bound what is in flight; a slot may hold several connections (n > 1, tokenizing)
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=config.slots),
            transport=transport,
        )
        self._pool: SlotPool[int] = SlotPool(list(range(config.slots)), max_queue=config.max_queue)
        self._requests = 0
        self._tokens = 0
        self._count_lock = threading.Lock()
        self._tokenizer: tuple[str, str] | bool | None = False  # False: not probed yet; None: none found

    # -- port: description ------------------------------------------------------------------------------

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            id=self._config.model_id,
            context_length=self._config.context_length,
            created=self._created,
            engine="openai",
            source=self._config.base_url,
            supports_logprobs=True,
        )

    def stats(self) -> EngineStats:
        # ready: an upstream that is down is answered per request (503), not by readiness
        return self._pool.engine_stats(
            requests_total=self._requests, tokens_generated_total=self._tokens, ready=True
        )

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        if self._tokenizer is False:
            self._tokenizer = await self._probe_tokenizer()
        found = self._tokenizer
        if isinstance(found, tuple):
            counted = await self._tokenize(found, messages, tools)
            if counted is not None:
                return counted
        # no tokenizer endpoint: about four characters a token, as OpenAI's rule of thumb has it
        if isinstance(messages, str):
            return max(1, len(messages) // 4)
        rendered = [message_dict(m) for m in messages] + [tool_schema(t) for t in tools]
        return max(1, len(json.dumps(rendered)) // 4)

    async def _probe_tokenizer(self) -> tuple[str, str] | None:
        for route, kind in TOKENIZE_ROUTES:
            if await self._tokenize((route, kind), "probe", ()) is not None:
                return route, kind
        return None

    async def _tokenize(
        self, route: tuple[str, str], messages: Sequence[Message] | str, tools: Sequence[ToolSpec]
    ) -> int | None:
        path, kind = route
        root = str(self._client.base_url).rstrip("/").removesuffix("/v1")
        if kind == "vllm":
            body: dict[str, Any] = {"model": self._model}
            if isinstance(messages, str):
                body["prompt"] = messages
            else:
                body["messages"] = [message_dict(m) for m in messages]
                if tools:
                    body["tools"] = [tool_schema(t) for t in tools]
        else:
            text = messages if isinstance(messages, str) else "\n".join(m.content or "" for m in messages)
            body = {"content": text} if kind == "llama-server" else {"input": text}
        try:
            response = await self._client.post(root + path, json=body)
            if response.status_code != 200:
                return None
            found = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if kind == "vllm" and isinstance(found.get("count"), int):
            return int(found["count"])
        tokens = found.get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    # -- port: generation -------------------------------------------------------------------------------

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request), with_logprobs=request.sampling.logprobs)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        await self._check_budget(request)
        self._pool.admit()  # Overloaded before anything is streamed
        yield ChatDelta(index=0)  # accepted: an edge can start its response while the upstream works
        slot = await self._pool.acquire()
        try:
            with self._count_lock:
                self._requests += 1
            if request.n == 1:
                usage = Usage()
                async for delta, seen in self._one(request, 0):
                    if seen is not None:
                        usage = seen
                    else:
                        yield delta
                yield ChatDelta(index=0, usage=usage)
                return
            async for delta in self._fan_out(request):
                yield delta
        finally:
            self._pool.release(slot)

    async def _check_budget(self, request: GenerationRequest) -> None:
        if self._config.clamp_max_tokens or request.sampling.max_tokens is None:
            return
        prompt = await self._prompt_tokens(request)
        if prompt + request.sampling.max_tokens > self._config.context_length:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self._config.context_length} tokens; the request "
                f"needs {prompt} for the prompt + {request.sampling.max_tokens} for the completion. Shorten "
                "the messages or lower max_tokens.",
                param="messages",
            )

    async def _fan_out(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        """``n`` choices as ``n`` upstream streams (not every server generates several choices)."""
        queue: asyncio.Queue[tuple[ChatDelta | None, Usage | None, BaseException | None]] = asyncio.Queue()

        async def pump(index: int) -> None:
            try:
                async for delta, seen in self._one(request, index):
                    await queue.put((None if seen is not None else delta, seen, None))
            except BaseException as error:  # handed to the consumer, which raises it
                await queue.put((None, None, error))
                return
            await queue.put((None, None, None))

        tasks = [asyncio.create_task(pump(i)) for i in range(request.n)]
        prompt, completion, cached, running = 0, 0, 0, request.n
        try:
            while running:
                delta, seen, error = await queue.get()
                if error is not None:
                    raise error
                if seen is not None:
                    prompt, completion = max(prompt, seen.prompt_tokens), completion + seen.completion_tokens
                    cached = max(cached, seen.cached_tokens)
                elif delta is not None:
                    yield delta
                else:
                    running -= 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)
        yield ChatDelta(index=request.n - 1, usage=usage)

    async def _one(
        self, request: GenerationRequest, index: int
    ) -> AsyncIterator[tuple[ChatDelta, Usage | None]]:
        """One choice's deltas; its usage arrives as ``(empty delta, usage)``."""
        path, body = request_body(
            request, self._model, {"temperature": self._config.temperature, "top_p": self._config.top_p}
        )
        attempt = 0
        while True:
            started = False
            try:
                async with self._client.stream("POST", path, json=body) as response:
                    if response.status_code != 200:
                        raise _status(response, await response.aread(), self._config.base_url)
                    produced = 0
                    usage: Usage | None = None
                    replied = False
                    named: set[int] = set()  # calls whose id and name went out (some servers repeat them)
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        replied = True
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        if isinstance(chunk, dict) and "error" in chunk:
                            raise EngineFailure(
                                f"the upstream failed mid-stream: {error_message(data.encode())}"
                            )
                        deltas, seen = chunk_deltas(chunk, index)
                        usage = seen or usage
                        for delta in map(lambda d: _first_names(d, named), deltas):
                            started = True
                            if delta.content or delta.tool_call_deltas:
                                produced += 1
                                with self._count_lock:
                                    self._tokens += 1
                            yield delta, None
                    if not replied:
                        # llama-cpp-python's server answers a request it rejects with an empty stream;
                        # asked again without streaming, it says why (nothing has reached the client)
                        async for delta, seen in self._unstreamed(path, body, index):
                            yield delta, seen
                        return
                    if usage is None:  # a server that ignores stream_options.include_usage
                        usage = Usage(
                            prompt_tokens=await self._prompt_tokens(request), completion_tokens=produced
                        )
                    yield ChatDelta(index=index), usage
                    return
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.ReadError,
                httpx.RemoteProtocolError,
            ) as error:
                if started:
                    raise EngineFailure(f"the upstream stream broke after it started: {error}") from error
                failure: MindFuError = UpstreamUnavailable(
                    f"the upstream at {self._config.base_url} cannot be reached: {error}", retry_after=2.0
                )
            except UpstreamUnavailable as error:
                failure = error
            except httpx.TimeoutException as error:
                raise EngineFailure(
                    f"the upstream went silent for {self._config.read_timeout_s} s"
                ) from error
            except httpx.HTTPError as error:
                raise EngineFailure(f"the upstream failed: {error}") from error
            except ValueError as error:  # a chunk that is not JSON
                raise EngineFailure(
                    f"the upstream sent something that is not an OpenAI chunk: {error}"
                ) from error
            if attempt >= self._config.retries:
                raise failure
            attempt += 1
            log.warning("upstream attempt %d failed (%s); retrying", attempt, failure)
            await asyncio.sleep(self._config.retry_backoff_s * 2 ** (attempt - 1))

    async def _unstreamed(
        self, path: str, body: dict[str, Any], index: int
    ) -> AsyncIterator[tuple[ChatDelta, Usage | None]]:
        whole = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        try:
            response = await self._client.post(path, json=whole)
        except httpx.TransportError:  # the server closed the connection its empty stream came on
            response = await self._client.post(path, json=whole)
        if response.status_code != 200:
            raise _status(response, response.content, self._config.base_url)
        deltas, usage = completion_deltas(response.json(), index)
        for delta in deltas:
            yield delta, None
        yield ChatDelta(index=index), usage or Usage()

    async def _prompt_tokens(self, request: GenerationRequest) -> int:
        if isinstance(request, ChatRequest):
            return await self.count_tokens(request.messages, request.tools)
        assert isinstance(request, TextRequest)
        return await self.count_tokens(request.prompt)

    async def aclose(self) -> None:
        await self._client.aclose()


def _first_names(delta: ChatDelta, named: set[int]) -> ChatDelta:
    """``delta`` with a call's id and name only on its first piece, as OpenAI streams them."""
    if not delta.tool_call_deltas:
        return delta
    pieces = []
    for piece in delta.tool_call_deltas:
        if piece.index in named:
            piece = replace(piece, id=None, name=None)
        elif piece.name is not None:
            named.add(piece.index)
        pieces.append(piece)
    return replace(delta, tool_call_deltas=tuple(pieces))


def _status(response: httpx.Response, body: bytes, upstream: str) -> MindFuError:
    retry_after: float | None = None
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    return status_error(response.status_code, error_message(body), retry_after=retry_after, upstream=upstream)
