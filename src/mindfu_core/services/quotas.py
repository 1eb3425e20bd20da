"""What one API key may take of the server at a time: requests in flight, and tokens a minute.

A key over its share gets 429 with a ``Retry-After`` that says when it will be under it again, so that one
busy agent (or a runaway script) cannot take every slot from the others. Tokens are counted when a request
ends (prompt and completion); a key may start a request while the last minute's tokens are under its share.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mindfu_core.errors import Overloaded

WINDOW_S = 60.0
RATE_LIMITED = "rate_limit_exceeded"


@dataclass(slots=True)
class _Usage:
    in_flight: int = 0
    spent: deque[tuple[float, int]] = field(default_factory=deque)  # (when, tokens), oldest first
    total: int = 0  # tokens in ``spent``


class KeyQuotas:
    """``concurrency`` requests in flight and ``tokens_per_minute`` per key (``None``: no bound); callers
    without a key (a server that takes none) are not bounded."""

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._concurrency = concurrency
        self._tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._keys: dict[str, _Usage] = {}

    @property
    def bounded(self) -> bool:
        return self._concurrency is not None or self._tokens_per_minute is not None

    def admit(self, key: str | None) -> Lease:
        """A lease on one request of ``key``; ``Overloaded`` (429, ``rate_limit_exceeded``) when the key has
        its share in flight, or has spent its tokens of the last minute."""
        if key is None or not self.bounded:
            return Lease(self, None)
        usage = self._keys.setdefault(key, _Usage())
        now = self._clock()
        self._expire(usage, now)
        if self._concurrency is not None and usage.in_flight >= self._concurrency:
            raise Overloaded(
                f"this API key already has {usage.in_flight} requests in flight, its limit "
                "(MINDFU_LIMITS__KEY_CONCURRENCY): wait for one to finish",
                retry_after=1.0,
                code=RATE_LIMITED,
            )
        limit = self._tokens_per_minute
        if limit is not None and usage.total >= limit:
            raise Overloaded(
                f"this API key has used {usage.total} tokens in the last minute, its limit "
                "(MINDFU_LIMITS__KEY_TOKENS_PER_MINUTE)",
                retry_after=self._until_under(usage, limit, now),
                code=RATE_LIMITED,
            )
        usage.in_flight += 1
        return Lease(self, key)

    def _expire(self, usage: _Usage, now: float) -> None:
        while usage.spent and usage.spent[0][0] <= now - WINDOW_S:
            usage.total -= usage.spent.popleft()[1]

    @staticmethod
    def _until_under(usage: _Usage, limit: int, now: float) -> float:
        """Seconds until enough of the last minute's tokens have aged out to be under ``limit``."""
        left = usage.total
        for when, tokens in usage.spent:
            left -= tokens
            if left < limit:
                return float(max(1, math.ceil(when + WINDOW_S - now)))
        return WINDOW_S

    def _release(self, key: str, tokens: int) -> None:
        usage = self._keys[key]
        usage.in_flight -= 1
        if tokens > 0:
            usage.spent.append((self._clock(), tokens))
            usage.total += tokens
        self._expire(usage, self._clock())
        if not usage.in_flight and not usage.spent:
            del self._keys[key]  # a key at rest holds no memory


class Lease:
    """One admitted request; ``release`` (once) with the tokens it used."""

    def __init__(self, quotas: KeyQuotas, key: str | None) -> None:
        self._quotas = quotas
        self._key = key

    def release(self, tokens: int = 0) -> None:
        key, self._key = self._key, None
        if key is not None:
            self._quotas._release(key, tokens)
