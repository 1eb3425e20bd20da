"""What crosses between MindFu and vLLM beside the engine: tool-call ids in the form mistral_common takes,
and the readers of each choice's output (one of vLLM's tool parsers, or MindFu's own shaper)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mindfu_adapters.llm.shaping import ChoiceShaper, ToolMode
from mindfu_adapters.llm.tool_format import CALL_OPEN, new_call_id
from mindfu_adapters.llm.vllm_config import VllmPrepared
from mindfu_core.domain.chat import ChatDelta, FinishReason, TokenLogprob, ToolCallDelta, TopLogprob

log = logging.getLogger(__name__)


def _mistral_id(call_id: str) -> str:
    """mistral_common takes tool-call ids of exactly nine letters and digits (vLLM's server shortens them
    the same way): the last nine of the id's letters and digits."""
    kept = "".join(char for char in call_id if char.isascii() and char.isalnum())
    return kept[-9:].rjust(9, "0")


def mistral_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Template messages with their tool-call ids in the form mistral_common accepts."""
    out = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {**call, "id": _mistral_id(call["id"])} for call in message["tool_calls"]
            ]
        if message.get("tool_call_id"):
            message["tool_call_id"] = _mistral_id(message["tool_call_id"])
        out.append(message)
    return out


class ParsedToolCalls:
    """One choice read by a vLLM tool parser: content and tool-call pieces as the parser finds them; at the
    end, whatever the whole-text parse finds that the stream did not send yet."""

    def __init__(self, index: int, make_parser: Any, request: Any) -> None:
        self._index = index
        self._parser = make_parser()
        self._make_parser = make_parser
        self._request = request
        self._text = ""
        self._ids: list[int] = []
        self._sent: dict[int, str] = {}  # call index -> the arguments sent

    def feed(self, text: str, ids: Sequence[int], logprobs: Sequence[TokenLogprob]) -> ChatDelta | None:
        current_text, current_ids = self._text + text, [*self._ids, *ids]
        try:
            found = self._parser.extract_tool_calls_streaming(
                self._text, current_text, text, self._ids, current_ids, list(ids), self._request
            )
        except Exception:  # a parser bug must not lose the answer: the end's whole-text parse decides
            log.exception("the tool parser failed on a streamed piece")
            found = None
        self._text, self._ids = current_text, current_ids
        if found is None:
            return None
        pieces = []
        for call in found.tool_calls or ():
            function = call.function
            arguments = (function.arguments if function is not None else None) or ""
            name = function.name if function is not None else None
            if call.index not in self._sent:
                self._sent[call.index] = ""
            self._sent[call.index] += arguments
            pieces.append(ToolCallDelta(index=call.index, id=call.id, name=name, arguments=arguments))
        # a parser that also splits reasoning off (vLLM's mistral parser takes literal <think> text for it
        # when the tokenizer has no [THINK] token) must not lose it: MindFu answers with the whole text
        content = (getattr(found, "reasoning", None) or "") + (found.content or "")
        if not content and not pieces:
            return None
        return ChatDelta(
            index=self._index,
            content=content,
            tool_call_deltas=tuple(pieces),
            logprobs=tuple(logprobs) if content else (),
        )

    def finish(self, reason: FinishReason, stop_sequence: str | None = None) -> list[ChatDelta]:
        parsed = self._make_parser().extract_tool_calls(self._text, self._request)
        pieces: list[ToolCallDelta] = []
        if parsed.tools_called:
            for position, call in enumerate(parsed.tool_calls):
                arguments = call.function.arguments or ""
                sent = self._sent.get(position)
                if sent is None:
                    pieces.append(
                        ToolCallDelta(
                            index=position,
                            id=call.id or new_call_id(),
                            name=call.function.name,
                            arguments=arguments,
                        )
                    )
                elif arguments.startswith(sent) and len(arguments) > len(sent):
                    pieces.append(ToolCallDelta(index=position, arguments=arguments[len(sent) :]))
        called = bool(pieces) or bool(self._sent)
        final = FinishReason.TOOL_CALLS if called and reason is FinishReason.STOP else reason
        deltas = [ChatDelta(index=self._index, tool_call_deltas=tuple(pieces))] if pieces else []
        matched = stop_sequence if final is FinishReason.STOP else None
        deltas.append(ChatDelta(index=self._index, finish_reason=final, stop_sequence=matched))
        return deltas


class Shaped:
    """MindFu's own reading of a choice (plain text, Hermes-format calls, grammar-forced calls)."""

    def __init__(self, shaper: ChoiceShaper) -> None:
        self._shaper = shaper

    def feed(self, text: str, ids: Sequence[int], logprobs: Sequence[TokenLogprob]) -> ChatDelta | None:
        return self._shaper.feed(text, logprobs)

    def finish(self, reason: FinishReason, stop_sequence: str | None = None) -> list[ChatDelta]:
        return self._shaper.finish(reason, stop_sequence)


def logprobs_of(tokenizer: Any, choice: Any, top: int) -> tuple[TokenLogprob, ...]:
    """The sampled tokens of one of vLLM's choices with their log-probabilities and the ``top`` best."""
    found = []
    for token, ranked in zip(choice.token_ids, choice.logprobs or (), strict=False):
        sampled = ranked.get(token)
        alternatives = sorted(
            (entry for entry in ranked.values() if entry.rank is not None and entry.rank <= top),
            key=lambda entry: entry.rank,
        )
        found.append(
            TokenLogprob(
                token=(sampled.decoded_token if sampled is not None else None) or tokenizer.decode([token]),
                logprob=float(sampled.logprob) if sampled is not None else 0.0,
                top=tuple(
                    TopLogprob(token=entry.decoded_token or "", logprob=float(entry.logprob))
                    for entry in alternatives
                ),
            )
        )
    return tuple(found)


def reader_for(
    index: int, prepared: VllmPrepared, parser_class: Any, tokenizer: Any
) -> ParsedToolCalls | Shaped:
    """What reads choice ``index`` of a prepared request: vLLM's tool parser when the request has one,
    else MindFu's shaper (fed the opening tag first when vLLM writes a forced call's bare JSON)."""
    if prepared.parser_request is not None:
        request = prepared.parser_request
        return ParsedToolCalls(index, lambda: parser_class(tokenizer, request.tools), request)
    shaper = ChoiceShaper(index, prepared.mode, prepared.tools)
    if prepared.mode is ToolMode.FORCED:
        shaper.feed(CALL_OPEN)  # vLLM writes the call's JSON; MindFu's shaper reads the tagged form
    return Shaped(shaper)
