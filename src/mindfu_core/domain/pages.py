"""Pages of a listing: every list MindFu answers comes in pages with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mindfu_core.errors import InvalidRequest

T = TypeVar("T")


# no slots: ``Page[X](...)`` sets ``__orig_class__``, which a frozen class with slots fails on (Python 3.11)
@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, in the listing's order. Pass ``next_cursor`` back for the page that follows;
    it is ``None`` on the last page. A cursor means nothing outside the listing that gave it."""

    items: tuple[T, ...]
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def page_of(found: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """The page of ``limit`` items from ``found``, which holds up to one more when more follow."""
    items = tuple(found[:limit])
    more = len(found) > limit and bool(items)
    return Page(items=items, next_cursor=cursor_of(items[-1]) if more else None)


def offset_cursor(offset: int) -> str:
    """The cursor of the page that starts ``offset`` items into a listing kept in a stable order."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def cursor_offset(cursor: str | None, *, param: str = "after") -> int:
    """The offset an ``offset_cursor`` stands for (0 without one); ``InvalidRequest`` naming ``param`` for a
    cursor that is not one."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        kind, offset = "", -1
    if kind != "offset" or not 0 <= offset < 2**31:
        raise InvalidRequest("not a cursor of this listing: pass a next_cursor back as it came", param=param)
    return offset
