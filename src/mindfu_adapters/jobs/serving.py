"""Serving a finished job's model: its GGUF export loaded as one more llama.cpp engine of the ChatService."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mindfu_core.domain.training import TrainingJob
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.chat import ChatService


@dataclass
class Publisher:
    """``TrainingService``'s ``publish``: builds an engine for a job's GGUF and adds it to the chat service;
    ``aclose`` releases the engines it built."""

    chat: ChatService
    build: Callable[[Path, str], LLMEngine]  # (GGUF file, model id) -> engine; blocking, run in a thread
    engines: list[LLMEngine] = field(default_factory=list)

    async def __call__(self, job: TrainingJob) -> bool:
        gguf = job.artifacts.get("gguf")
        name = job.fine_tuned_model
        if not gguf or not name or not await asyncio.to_thread(Path(gguf).exists):
            return False
        if name in {info.id for info in self.chat.models()}:
            return True
        engine = await asyncio.to_thread(self.build, Path(gguf), name)
        self.chat.add_engine(engine)
        self.engines.append(engine)
        return True

    async def aclose(self) -> None:
        for engine in self.engines:
            await engine.aclose()
        self.engines.clear()
