"""Bearer API keys, the same rules on every edge: when any key is configured, every call must bring one."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from contextvars import ContextVar

from mindfu_core.errors import Unauthenticated


class ApiKeys:
    """The configured keys, checked in constant time (every key is compared, whatever matches)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [key.encode("utf-8") for key in keys if key]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> None:
        """Raise ``Unauthenticated`` unless ``authorization`` (``Bearer <key>``) names a configured key."""
        if not self._keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                "(or 'x-api-key: <key>').",
                code="missing_api_key",
            )
        presented = token.strip().encode("utf-8")
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(presented, key)
        if not matched:
            raise Unauthenticated("Incorrect API key provided.")

    def key_id(self, authorization: str | None) -> str | None:
        """A stable fingerprint of the presented key (never the key itself), when keys are enabled."""
        if not self._keys:
            return None
        _, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if not token:
            return None
        return "key_" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


#: The credentials the current request presented (``Bearer <key>``), set by an edge for the duration of
#: one call so that a client of a remote core can present the same ones.
presented_credentials: ContextVar[str | None] = ContextVar("presented_credentials", default=None)
