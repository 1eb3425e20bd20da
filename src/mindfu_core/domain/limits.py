"""What one request may cost: bounds an edge cannot be talked past (issue 20, bounded cost)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLimits:
    """Bounds every generation request is checked against before an engine sees it.

    The defaults hold what coding agents send (Codex's 9k-token prompt with its tools, Claude Code's long
    sessions) and refuse what only a mistake or an attack sends: a hundred thousand messages, a tool schema
    nested a thousand deep. ``max_tokens`` bounds one answer: the length of an answer whose request names
    none, and a larger ``max_tokens`` is lowered to it (the answer ends with finish_reason ``length``), as
    llama-server's ``--n-predict`` does; ``None`` leaves an answer what the context window holds.
    """

    max_n: int = 8
    max_messages: int = 4096
    max_message_chars: int = 1 << 20
    max_prompt_chars: int = 4 << 20  # all messages (or a text prompt) together
    max_tools: int = 128  # OpenAI's own bound
    max_tool_schema_depth: int = 32
    max_stop: int = 4  # OpenAI's
    max_stop_chars: int = 256
    max_tokens: int | None = None


#: The bounds of a service built with no others named
DEFAULT_LIMITS = RequestLimits()
