"""Prompt prefixes evicted from llama.cpp slots, kept in host memory and restored instead of recomputed.

A slot holds one sequence's KV cache. When a request takes a slot whose cached tokens it does not share, the
slot's prefix would be lost; with more agent sessions than slots that happens on every turn. The slot's state
(its sequence's KV cells, copied out by llama.cpp) is kept here first, bounded in bytes, least recently used
out first; a later request that shares more of its prompt with a kept prefix than with any free slot gets
that state copied back into its slot (llama-server's ``--cache-ram``).
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CachedPrefix:
    """One kept prefix: its tokens, the LoRA adapter it was computed under, and the slot state bytes."""

    tokens: tuple[int, ...]
    adapter: str | None
    state: bytes


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The number of leading tokens ``a`` and ``b`` share."""
    for position, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return position
    return min(len(a), len(b))


class HostPromptCache:
    """Kept prefixes up to ``capacity_bytes`` of state; thread-safe (slots run in worker threads)."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[int, CachedPrefix] = OrderedDict()  # oldest use first
        self._next = 0
        self._lock = threading.Lock()
        self.size_bytes = 0
        self.hits = 0
        self.restored_tokens = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, tokens: Sequence[int], adapter: str | None, state: bytes) -> bool:
        """Keep ``state`` for ``tokens``; kept prefixes of these tokens go (this one holds them). False when
        the state alone is larger than the whole cache."""
        if len(state) > self.capacity_bytes:
            return False
        entry = CachedPrefix(tokens=tuple(tokens), adapter=adapter, state=state)
        with self._lock:
            for key, old in list(self._entries.items()):
                if old.adapter == adapter and entry.tokens[: len(old.tokens)] == old.tokens:
                    self._drop(key)
            while self._entries and self.size_bytes + len(state) > self.capacity_bytes:
                self._drop(next(iter(self._entries)))
                self.evictions += 1
            self._entries[self._next] = entry
            self._next += 1
            self.size_bytes += len(state)
        return True

    def best(self, tokens: Sequence[int], adapter: str | None) -> tuple[int, CachedPrefix] | None:
        """The kept prefix sharing the most leading tokens with ``tokens`` (and how many), if any shares one;
        it counts as used now."""
        with self._lock:
            found: tuple[int, int, CachedPrefix] | None = None
            for key, entry in self._entries.items():
                if entry.adapter != adapter:
                    continue
                length = shared_prefix(entry.tokens, tokens[: len(entry.tokens)])
                if length and (found is None or length > found[0]):
                    found = (length, key, entry)
            if found is None:
                return None
            length, key, entry = found
            self._entries.move_to_end(key)
            return length, entry

    def record_hit(self, restored: int) -> None:
        with self._lock:
            self.hits += 1
            self.restored_tokens += restored

    def _drop(self, key: int) -> None:
        self.size_bytes -= len(self._entries.pop(key).state)


def save_sequence(context: Any, seq_id: int) -> bytes | None:
    """The state of sequence ``seq_id`` of a llama.cpp ``context`` (its KV cells), copied out."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(context.ctx, seq_id)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(context.ctx, buffer, size, seq_id)
    return bytes(buffer)[:written] if written else None


def load_sequence(context: Any, seq_id: int, state: bytes) -> bool:
    """Replace sequence ``seq_id`` with a saved ``state``; False (and the sequence empty) when llama.cpp
    refuses it."""
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(context.memory, seq_id, -1, -1)
    buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
    if llama_cpp.llama_state_seq_set_data(context.ctx, buffer, len(state), seq_id):
        return True
    llama_cpp.llama_memory_seq_rm(context.memory, seq_id, -1, -1)
    return False


__all__ = ["CachedPrefix", "HostPromptCache", "load_sequence", "save_sequence", "shared_prefix"]
