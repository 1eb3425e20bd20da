"""Serving a finished job's model: its adapter on the engine serving the base model, where that engine
takes adapters (a LoRA GGUF on llama.cpp, the PEFT folder on vLLM), else its merged GGUF loaded as one more
llama.cpp engine of the ChatService."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mindfu_core.domain.training import TrainingJob
from mindfu_core.errors import MindFuError
from mindfu_core.ports.llm import LLMEngine, ServesAdapters
from mindfu_core.services.chat import ChatService

log = logging.getLogger(__name__)


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
        if name and name in {info.id for info in self.chat.models()}:
            return True
        if name and await self._as_adapter(job, name):
            return True
        if not gguf or not name or not await asyncio.to_thread(Path(gguf).exists):
            return False
        engine = await asyncio.to_thread(self.build, Path(gguf), name)
        self.chat.add_engine(engine, tenant=job.tenant)
        self.engines.append(engine)
        return True

    async def _as_adapter(self, job: TrainingJob, name: str) -> bool:
        """Register the job's adapter on the engine serving its base model, when that engine takes adapters:
        its LoRA GGUF for llama.cpp, its PEFT folder for vLLM."""
        try:
            base = self.chat.engine_for(job.spec.base_model)
        except MindFuError:
            return False
        if not isinstance(base, ServesAdapters):
            return False
        kind = "adapter" if base.adapter_format == "peft" else "lora_gguf"
        lora = job.artifacts.get(kind)
        if not lora or not await asyncio.to_thread(Path(lora).exists):
            return False
        try:
            engine: LLMEngine = await base.add_adapter(name, Path(lora))
        except MindFuError as error:
            log.warning(
                "job %s: the adapter could not be served (%s); serving the merged model", job.id, error
            )
            return False
        self.chat.add_engine(engine, tenant=job.tenant)
        return True

    async def aclose(self) -> None:
        for engine in self.engines:
            await engine.aclose()
        self.engines.clear()
