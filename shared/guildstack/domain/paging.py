"""Keyset pagination: a page is at most `limit` items after the last one already seen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from guildstack.domain.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

T = TypeVar("T")

DEFAULT_LIMIT = DEFAULT_PAGE_SIZE
MAX_LIMIT = MAX_PAGE_SIZE

# (created_at, id) of the last item seen: stable under inserts, unlike an offset.
Cursor = tuple[datetime, UUID]


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_after: Cursor | None


def page_of(fetched: list[T], limit: int, key: Callable[[T], Cursor]) -> Page[T]:
    """Build a page from `limit + 1` fetched rows: the extra row only says there is more."""
    if len(fetched) <= limit:
        return Page(items=fetched, next_after=None)
    items = fetched[:limit]
    return Page(items=items, next_after=key(items[-1]))
