"""Opaque list cursors and the `{"items", "next_cursor"}` envelope every list answers with."""

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel

from guildstack.domain.errors import InvalidInput
from guildstack.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Page, PageRequest

T = TypeVar("T")
R = TypeVar("R")


class ListResponse(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def list_of(page: Page[T], to_item: Callable[[T], R]) -> ListResponse[R]:
    """The `{"items", "next_cursor"}` envelope of a page, each item mapped by `to_item`."""
    return ListResponse(
        items=[to_item(item) for item in page.items], next_cursor=encode_cursor(page.next_after)
    )


def encode_cursor(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    ts, ident = cursor
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{ident}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Cursor:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        ts, _, ident = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(ts), UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "cursor is not valid",
            errors=[
                {
                    "loc": ["query", "cursor"],
                    "msg": "not a cursor this API issued",
                    "type": "value_error",
                }
            ],
        ) from exc


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageRequest:
    """FastAPI dependency: `limit` (default 50, max 200) and `cursor` query parameters."""
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


def encode_key_cursor(key: str | None) -> str | None:
    """A cursor over a list ordered by a text key (lists assembled in memory)."""
    if key is None:
        return None
    return base64.urlsafe_b64encode(f"k|{key}".encode()).decode().rstrip("=")


def decode_key_cursor(raw: str) -> str:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        tag, sep, key = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        tag, sep, key = "", "", ""
    if tag != "k" or not sep:
        raise InvalidInput(
            "cursor is not valid",
            errors=[{"loc": ["query", "cursor"], "msg": "not a cursor this API issued"}],
        )
    return key


def key_page(
    items: list[T], key: Callable[[T], str], limit: int, cursor: str | None
) -> ListResponse[T]:
    """The `limit` items after `cursor` in `key` order."""
    after = decode_key_cursor(cursor) if cursor else None
    ordered = sorted(items, key=key)
    remaining = [item for item in ordered if after is None or key(item) > after]
    page = remaining[:limit]
    more = len(remaining) > limit
    return ListResponse(items=page, next_cursor=encode_key_cursor(key(page[-1])) if more else None)
