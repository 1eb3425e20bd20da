"""``mindfu chat``: stream answers to the terminal, one prompt or an interactive session."""

from __future__ import annotations

import asyncio
import sys

from mindfu_cli.connect import application
from mindfu_core.domain.chat import ChatRequest, Message, Role, SamplingParams
from mindfu_core.errors import MindFuError


async def _run(
    prompt: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
    server: str | None,
) -> int:
    async with application(server) as app:
        service = app.chat
        model_id = model or (await service.list_models())[0].id
        history: list[Message] = [Message(role=Role.SYSTEM, content=system)] if system else []
        interactive = prompt is None
        while True:
            if interactive:
                try:
                    prompt = await asyncio.to_thread(input, "> ")
                except EOFError:
                    print()
                    return 0
                if prompt.strip() in ("/exit", "/quit"):
                    return 0
                if not prompt.strip():
                    continue
            history.append(Message(role=Role.USER, content=prompt))
            request = ChatRequest(
                model=model_id,
                messages=tuple(history),
                sampling=SamplingParams(max_tokens=max_tokens, temperature=temperature),
            )
            parts: list[str] = []
            async for delta in await service.stream(request):
                if delta.content:
                    parts.append(delta.content)
                    sys.stdout.write(delta.content)
                    sys.stdout.flush()
            sys.stdout.write("\n")
            history.append(Message(role=Role.ASSISTANT, content="".join(parts)))
            if not interactive:
                return 0


def chat(
    *,
    prompt: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
    server: str | None = None,
) -> int:
    try:
        return asyncio.run(_run(prompt, model, system, max_tokens, temperature, server))
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
