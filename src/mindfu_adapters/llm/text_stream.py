"""Token bytes to safe text fragments: complete UTF-8 characters only, stop sequences cut and held back."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopStream:
    """Feeds the bytes of each generated token; returns the text that may be sent now.

    Text that could be the start of a stop sequence is held back until it is clear; when a stop
    sequence appears, everything from it on is dropped and ``stopped`` becomes true.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self._pending = ""
        self.stopped = False
        self.matched: str | None = None  # the stop sequence that stopped it

    def feed(self, piece: bytes) -> str:
        """Text released by one more token's bytes (may be empty)."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(piece)
        if not self._stops:
            out, self._pending = self._pending, ""
            return out
        found = [(i, stop) for stop in self._stops if (i := self._pending.find(stop)) >= 0]
        if found:
            cut, self.matched = min(found, key=lambda hit: hit[0])
            self.stopped = True
            out, self._pending = self._pending[:cut], ""
            return out
        keep = self._held_suffix()
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return out

    def flush(self) -> str:
        """Whatever is held back, once generation has ended without a stop sequence."""
        if self.stopped:
            return ""
        out = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return out

    def _held_suffix(self) -> int:
        """Length of the longest tail of the pending text that begins some stop sequence."""
        text = self._pending
        for size in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
