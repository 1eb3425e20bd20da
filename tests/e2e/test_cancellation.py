"""A client that goes away stops the work it asked for, streamed or not, and frees the engine: on the
single-process server, and through a gateway (the gateway cancels its gRPC call, the core stops)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import Server, running_server
from tests.fixtures.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.slow
MAX_TOKENS = 16000


@pytest.fixture(scope="module", params=["in-process", "gateway"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The tiny model never emits its end token, so only cancellation can stop it before MAX_TOKENS.
    folder = tmp_path_factory.mktemp("cancel")
    model = write_tiny_gguf(folder / "tiny.gguf", context_length=16384)
    env = {
        "MINDFU_LLM__MODEL_PATH": str(model),
        "MINDFU_LLM__MODEL_ID": "tiny",
        "MINDFU_LLM__CONTEXT_LENGTH": "16384",
        "MINDFU_LLM__THREADS": "1",
        "MINDFU_LLM__SLOTS": "1",  # one slot: a second request waits for it
    }
    with running_server(folder, env=env, topology=request.param) as running:
        yield running


def body(stream: bool) -> dict[str, object]:
    return {
        "model": "tiny",
        "messages": [{"role": "user", "content": "go"}],
        "max_tokens": MAX_TOKENS,
        "temperature": 1.0,
        "stream": stream,
    }


def wait_idle(server: Server, timeout: float = 10) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        engine = server.engine()
        if engine["active"] == 0:
            return engine
        assert time.monotonic() < deadline, f"the engine is still busy: {engine}"
        time.sleep(0.02)


def settled_tokens(server: Server) -> int:
    """Token counter once it stops moving (the worker thread may finish its current token)."""
    last = wait_idle(server)["tokens_generated_total"]
    time.sleep(0.2)
    now = server.engine()["tokens_generated_total"]
    assert now == last, "tokens are still being generated after the slot was freed"
    return now


def test_disconnect_mid_stream_stops_generation(server: Server) -> None:
    before = settled_tokens(server)
    received = 0
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{server.base_url}/chat/completions", json=body(True)) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received >= 3:
                break
    produced = settled_tokens(server) - before
    assert produced < MAX_TOKENS / 4, f"generation went on after the disconnect: {produced} tokens"


def test_abandoned_non_stream_request_stops_generation(server: Server) -> None:
    before = settled_tokens(server)
    payload = json.dumps(body(False)).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        deadline = time.monotonic() + 30
        while server.engine()["tokens_generated_total"] == before:  # generation has started
            assert time.monotonic() < deadline, "generation never started"
            time.sleep(0.005)
    produced = settled_tokens(server) - before
    assert 0 < produced < MAX_TOKENS / 4, f"generation went on after the client left: {produced} tokens"


def test_next_request_is_served_after_a_disconnect(server: Server) -> None:
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{server.base_url}/chat/completions", json=body(True)) as response:
            next(response.iter_lines())
        reply = client.post(
            f"{server.base_url}/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        )
    assert reply.status_code == 200
    assert reply.json()["usage"]["completion_tokens"] == 5


def first_event(lines: Iterator[str]) -> dict[str, object]:
    """The first event of a stream's ``iter_lines()`` (keep that iterator: dropping it closes the stream)."""
    for line in lines:
        if line.startswith("data: {"):
            event: dict[str, object] = json.loads(line.removeprefix("data: "))
            return event
    raise AssertionError("the stream ended without an event")


def test_a_stream_starts_at_once_and_a_client_that_leaves_before_its_first_token_frees_everything(
    server: Server,
) -> None:
    """While another request holds the only slot, a streamed request gets its headers and role chunk at
    once (agents give up on a server silent for minutes); when it leaves before its first token, it leaves
    the line, the busy request's cancel frees the slot, and the server logs no error."""
    before = wait_idle(server)["requests_total"]
    with (
        httpx.Client(timeout=30) as busy_client,
        httpx.Client(timeout=30) as waiting_client,
        busy_client.stream("POST", f"{server.base_url}/chat/completions", json=body(True)) as busy,
    ):
        busy_lines = busy.iter_lines()
        assert first_event(busy_lines)["choices"][0]["delta"]["role"] == "assistant"  # type: ignore[index]
        deadline = time.monotonic() + 30
        while server.engine()["active"] == 0:
            assert time.monotonic() < deadline, "the busy request never took the slot"
            time.sleep(0.005)
        started = time.monotonic()
        with waiting_client.stream("POST", f"{server.base_url}/chat/completions", json=body(True)) as waiting:
            assert waiting.status_code == 200
            waiting_lines = waiting.iter_lines()
            role = first_event(waiting_lines)
            assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
            assert time.monotonic() - started < 5
            assert server.engine()["queued"] == 1  # it waits for the slot: nothing was computed yet
    # both clients are gone: the waiting one left the line, the busy one's generation stopped
    engine = wait_idle(server)
    assert engine["queued"] == 0
    time.sleep(0.5)
    assert server.engine()["requests_total"] == before + 1  # the one that left never got the slot
    log = server.log.read_text()
    assert "Traceback" not in log and "InvalidStateError" not in log and " 500" not in log
