"""LoRA adapters served on top of a llama.cpp model, per request: a PEFT adapter of SmolLM2 converted with
llama.cpp's own converter changes the output when a request names it, and only then; an adapter of another
model is refused when it is registered, not at the first request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mindfu_adapters.container import build_container
from mindfu_adapters.export.gguf import export_lora_gguf
from mindfu_adapters.export.hf import gguf_to_hf
from mindfu_adapters.llm.backends import default_model_path
from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine
from mindfu_adapters.settings import Settings
from mindfu_core import ChatRequest, ConfigurationError, Message, Role, SamplingParams
from mindfu_http.app import create_app
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = pytest.mark.slow
QUESTION = (Message(role=Role.USER, content="What is the capital of France?"),)


def lora_of(model_dir: Path, out_dir: Path, tools: Path, *, seed: int = 0) -> Path:
    """A LoRA GGUF of ``model_dir`` whose weights are random (a fresh PEFT adapter changes nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM"
    )
    peft = get_peft_model(model, config)
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.copy_(torch.randn_like(weight) * 0.5)
    peft.save_pretrained(out_dir / "adapter")
    return export_lora_gguf(
        out_dir / "adapter", model_dir, out_dir / "adapter.gguf", tools=tools, outtype="f32"
    )


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A LoRA GGUF of SmolLM2, and one of an unrelated tiny Llama."""
    root = tmp_path_factory.mktemp("lora")
    tools = root / "tools"
    smol = gguf_to_hf(default_model_path(), root / "smollm2-hf")
    fitting = lora_of(smol, root / "smol", tools)
    tiny = write_tiny_llama(root / "tiny-hf")
    foreign = lora_of(tiny, root / "tiny", tools)
    return fitting, foreign


def ask(model: str) -> ChatRequest:
    return ChatRequest(
        model=model, messages=QUESTION, sampling=SamplingParams(max_tokens=12, temperature=0.0)
    )


async def test_an_adapter_changes_the_output_only_for_requests_that_name_it(
    adapters: tuple[Path, Path],
) -> None:
    fitting, _ = adapters
    engine = LlamaCppEngine(
        LlamaCppConfig(
            model_path=default_model_path(),
            model_id="smol",
            context_length=512,
            threads=2,
            adapters={"smol-lora": fitting},
        )
    )
    try:
        (tuned,) = engine.adapter_engines()
        assert tuned.model_info().id == "smol-lora" and tuned.model_info().source == str(fitting)
        base = (await engine.complete(ask("smol"))).choices[0].message.content
        with_adapter = (await tuned.complete(ask("smol-lora"))).choices[0].message.content
        base_again = (await engine.complete(ask("smol"))).choices[0].message.content
        assert with_adapter != base
        assert base_again == base  # the slot dropped the adapter and its cached prompt
        assert (await tuned.complete(ask("smol-lora"))).choices[0].message.content == with_adapter
    finally:
        await engine.aclose()


async def test_an_adapter_of_another_model_is_refused_at_registration(adapters: tuple[Path, Path]) -> None:
    _, foreign = adapters
    config = LlamaCppConfig(
        model_path=default_model_path(), model_id="smol", context_length=512, adapters={"wrong": foreign}
    )
    with pytest.raises(ConfigurationError, match=r"'wrong'.*does not fit 'smol'"):
        LlamaCppEngine(config)
    missing = LlamaCppConfig(
        model_path=default_model_path(), model_id="smol", adapters={"gone": foreign.with_name("nope.gguf")}
    )
    with pytest.raises(ConfigurationError, match="names no file"):
        LlamaCppEngine(missing)


def test_settings_serve_the_adapter_as_a_model(adapters: tuple[Path, Path], tmp_path: Path) -> None:
    fitting, _ = adapters
    llm = {"context_length": 512, "lora_adapters": {"smol-lora": str(fitting)}}
    container = build_container(Settings(data_dir=tmp_path, llm=llm, rag={"enabled": False}))  # type: ignore[arg-type]
    with TestClient(create_app(container)) as client:
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        answers = [
            client.post(
                "/v1/chat/completions",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_tokens": 12,
                    "temperature": 0,
                },
            ).json()
            for model in ("smollm2-135m-instruct", "smol-lora")
        ]
    assert listed == ["smollm2-135m-instruct", "smol-lora"]
    assert answers[1]["model"] == "smol-lora"
    assert answers[0]["choices"][0]["message"]["content"] != answers[1]["choices"][0]["message"]["content"]


async def test_an_adapter_is_added_while_serving(adapters: tuple[Path, Path]) -> None:
    """What a finished fine-tuning job does: its adapter joins the running engine."""
    fitting, foreign = adapters
    engine = LlamaCppEngine(
        LlamaCppConfig(model_path=default_model_path(), model_id="smol", context_length=512)
    )
    try:
        base = (await engine.complete(ask("smol"))).choices[0].message.content
        busy = engine.stream(ask("smol"))
        text = ""
        while not text:  # a request in flight (past its accepted delta)
            text = (await anext(busy)).content or ""
        # loaded between two decoding steps: the request in flight neither waits nor changes
        tuned = await asyncio.wait_for(engine.add_adapter("late", fitting), 60)
        text += "".join([d.content or "" async for d in busy])
        assert text == base
        assert tuned.model_info().id == "late" and [e.model_info().id for e in engine.adapter_engines()] == [
            "late"
        ]
        assert (await tuned.complete(ask("late"))).choices[0].message.content != base
        with pytest.raises(ConfigurationError, match="does not fit"):
            await engine.add_adapter("wrong", foreign)
        with pytest.raises(ConfigurationError, match="already served"):
            await engine.add_adapter("late", fitting)
        assert (await engine.complete(ask("smol"))).choices[0].message.content == base
    finally:
        await engine.aclose()


async def test_requests_on_different_adapters_run_side_by_side(adapters: tuple[Path, Path]) -> None:
    """Two slots, the bare model on one and the adapter on the other, decoding at the same time: each gives
    what it gives alone (the steps take the adapters in turn). Each run starts on a fresh engine, so that
    both compute their prompts alike (a reused prefix would change the last digits of the logits)."""
    fitting, _ = adapters
    config = LlamaCppConfig(
        model_path=default_model_path(),
        model_id="smol",
        context_length=512,
        slots=2,
        adapters={"smol-lora": fitting},
    )
    outputs = []
    for side_by_side in (False, True):
        engine = LlamaCppEngine(config)
        try:
            (tuned,) = engine.adapter_engines()
            if side_by_side:
                results = await asyncio.gather(engine.complete(ask("smol")), tuned.complete(ask("smol-lora")))
            else:
                results = [await engine.complete(ask("smol")), await tuned.complete(ask("smol-lora"))]
            outputs.append([r.choices[0].message.content for r in results])
        finally:
            await engine.aclose()
    alone, together = outputs
    assert together == alone
    assert alone[0] != alone[1]
