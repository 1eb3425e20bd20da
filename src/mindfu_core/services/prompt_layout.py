"""A prompt layout that engines can cache: client noise that changes every request leaves the prompt.

Coding agents resend the same long prefix (system prompt, tools, history) every turn, and an engine reuses
its cached computation only up to the first token that differs. Anything that changes per request near the
top of the prompt therefore costs a recomputation of the whole conversation. Such noise is dropped from
what the engine sees (the conversation log keeps the request as sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mindfu_core.domain.chat import Message, Role

#: Prefixes of system-prompt lines that carry per-request values and no instructions. Claude Code puts
#: ``x-anthropic-billing-header: cc_version=...; cc_entrypoint=...; cch=<hash>;`` in its first system block,
#: with a hash that changes on every request.
VOLATILE_LINE_PREFIXES = ("x-anthropic-billing-header:",)


def _without_volatile_lines(text: str) -> str:
    lines = text.split("\n")
    kept = [line for line in lines if not line.lstrip().startswith(VOLATILE_LINE_PREFIXES)]
    if len(kept) == len(lines):
        return text
    return "\n".join(kept).strip("\n")


def stable_messages(messages: Sequence[Message]) -> tuple[Message, ...]:
    """``messages`` without volatile lines in system messages; system messages left empty are dropped."""
    out: list[Message] = []
    for message in messages:
        if message.role is Role.SYSTEM and message.content:
            content = _without_volatile_lines(message.content)
            if content != message.content:
                if not content.strip():
                    continue
                message = replace(message, content=content)
        out.append(message)
    return tuple(out)


__all__ = ["VOLATILE_LINE_PREFIXES", "stable_messages"]
