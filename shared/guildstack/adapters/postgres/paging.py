"""The one keyset-paging query: a page of rows after the cursor, in a stable order.

Lists order by (timestamp, id): stable under inserts, unlike an offset. One extra row is
fetched only to tell whether there is a next page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from psycopg.rows import DictRow

from guildstack.adapters.postgres.database import Connection
from guildstack.domain.paging import Cursor, Page, PageRequest, page_of

T = TypeVar("T")


async def fetch_page(
    conn: Connection,
    query: str,
    params: Mapping[str, Any],
    page: PageRequest,
    to_item: Callable[[DictRow], T],
    cursor: Callable[[T], Cursor],
    *,
    key: tuple[str, str] = ("created_at", "id"),
    newest_first: bool = True,
) -> Page[T]:
    """`query` is a select ending in its WHERE clause (use `true` for none); this appends
    the cursor condition, the order and the limit. `key` names the (timestamp, id) columns,
    qualified as the query needs."""
    ts, ident = key
    before_or_after = "<" if newest_first else ">"
    direction = "desc" if newest_first else "asc"
    after_ts, after_id = page.after if page.after else (None, None)
    sql = (
        f"{query} and (%(after_ts)s::timestamptz is null"
        f" or ({ts}, {ident}) {before_or_after} (%(after_ts)s::timestamptz, %(after_id)s::uuid))"
        f" order by {ts} {direction}, {ident} {direction} limit %(page_limit)s"
    )
    cur = await conn.execute(
        sql,
        {**params, "after_ts": after_ts, "after_id": after_id, "page_limit": page.limit + 1},
    )
    items = [to_item(row) for row in await cur.fetchall()]
    return page_of(items, page.limit, cursor)
