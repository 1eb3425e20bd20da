"""Several models at once: engines from MINDFU_MODELS beside the main one, aliases, and models loaded on
first use and unloaded when idle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.llm.lazy import LazyEngine
from mindfu_core import ChatRequest, InvalidRequest, Message, ModelInfo, Role
from mindfu_core.services.chat import ChatService
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.tiny_gguf import write_tiny_gguf


def ask(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role=Role.USER, content="hi"),))


async def test_aliases_route_to_their_model_and_are_listed() -> None:
    first = ScriptedEngine([Reply(text="from a")], model_id="a")
    second = ScriptedEngine([Reply(text="from b")], model_id="b")
    service = ChatService([first, second], aliases={"alias-of-a": "a"})
    assert [m.id for m in await service.list_models()] == ["a", "b", "alias-of-a"]
    assert (await service.get_model("alias-of-a")).id == "alias-of-a"
    result = await service.complete(ask("alias-of-a"))
    assert result.choices[0].message.content == "from a" and result.model == "a"
    assert (await service.complete(ask("b"))).choices[0].message.content == "from b"
    assert first.requests[-1].model == "a"  # the engine sees its own id
    with pytest.raises(InvalidRequest):
        ChatService([first], aliases={"x": "missing"})
    with pytest.raises(InvalidRequest):
        ChatService([first, second], aliases={"b": "a"})


async def test_a_lazy_engine_loads_at_first_use_and_unloads_when_idle() -> None:
    built: list[ScriptedEngine] = []

    def load() -> ScriptedEngine:
        built.append(ScriptedEngine([Reply(text="loaded answer")], model_id="lazy"))
        return built[-1]

    info = ModelInfo(id="lazy", context_length=256, engine="llama_cpp")
    engine = LazyEngine(load, info, idle_s=0.2, slots=1, max_queue=4)
    assert not engine.loaded and engine.model_info().id == "lazy" and engine.stats().ready
    result = await engine.complete(ask("lazy"))
    assert result.choices[0].message.content == "loaded answer" and engine.loads == 1
    stream = engine.stream(ask("lazy"))
    await anext(stream)  # a request in flight keeps it loaded past the idle time
    await asyncio.sleep(0.5)
    assert engine.loaded
    async for _ in stream:
        pass
    for _ in range(50):
        if not engine.loaded:
            break
        await asyncio.sleep(0.05)
    assert not engine.loaded
    assert await engine.count_tokens("two words") == 2 and engine.loads == 2  # loaded again on demand
    await engine.aclose()
    assert not engine.loaded


def test_two_models_served_by_one_server(make_client: Any, tmp_path: Path) -> None:
    tiny = write_tiny_gguf(tmp_path / "tiny.gguf", context_length=512)
    more = [
        {"model_id": "tiny", "model_path": str(tiny), "aliases": ["small"], "idle_unload_s": 60, "threads": 1}
    ]
    with make_client(ScriptedEngine([Reply(text="scripted answer")]), models=more) as client:
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        scripted = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": [{"role": "user", "content": "hi"}]},
        ).json()
        small = client.post(
            "/v1/chat/completions",
            json={"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        ).json()
        missing = client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
        )
    assert listed == ["scripted", "tiny", "small"]
    assert scripted["choices"][0]["message"]["content"] == "scripted answer"
    assert small["model"] == "tiny" and small["usage"]["completion_tokens"] == 5  # the tiny GGUF answered
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_models_list_shows_every_configured_model_adapter_and_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mindfu_adapters.settings import Settings, llm_settings
    from mindfu_cli.models import _model_rows, list_models

    folder = tmp_path / "qwen-hf"
    folder.mkdir()
    adapter = tmp_path / "support.gguf"
    adapter.write_bytes(b"GGUF")
    settings = Settings(
        data_dir=tmp_path,
        llm=llm_settings(aliases=["default"], lora_adapters={"support": adapter}),
        models=[
            llm_settings(model_id="big", backend="openai", base_url="http://vllm:8000/v1"),
            llm_settings(backend="vllm", model_path=folder, aliases=["qwen"]),
            llm_settings(model_id="gone", model_path=tmp_path / "gone.gguf"),
        ],
    )
    rows = _model_rows(settings)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("smollm2-135m-instruct", "llama_cpp", "ok"),
        ("support", "llama_cpp lora", "ok"),
        ("default", "alias", ""),
        ("big", "openai", "upstream"),
        ("qwen-hf", "vllm", "ok"),
        ("qwen", "alias", ""),
        ("gone", "llama_cpp", "MISSING"),
    ]
    assert rows[2][3] == "-> smollm2-135m-instruct" and rows[5][3] == "-> qwen-hf"
    assert list_models() == 0
    assert "smollm2-135m-instruct" in capsys.readouterr().out
