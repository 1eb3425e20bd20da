"""Pages of a listing: every list MindFu answers comes in pages with an opaque cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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
