"""Server-Sent Events: framing, resume points, and the tail of an event log."""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request

from guildstack.domain.errors import BadRequest, GuildstackError
from guildstack.domain.runs import Event
from guildstack.domain.time import rfc3339
from guildstack.http.problems import problem_of, request_id_of
from guildstack.observability import logger

# A function URL response may stream for up to 15 minutes; end cleanly before that and
# let the client resume from the last id.
MAX_STREAM_SECONDS = 14 * 60
HEARTBEAT_SECONDS = 15
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message (`id:` only for events a client may resume after)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where to start: the `Last-Event-ID` header wins over `?after=`; 0 is the beginning."""
    if last_event_id is None:
        return after or 0
    try:
        value = int(last_event_id.strip())
    except ValueError as exc:
        raise BadRequest("Last-Event-ID must be an event id from this stream.") from exc
    if value < 0:
        raise BadRequest("Last-Event-ID must be an event id from this stream.")
    return value


async def tail(
    read: Callable[[], Awaitable[list[Event]]],
    ended: Callable[[list[Event]], Awaitable[bool]],
    request: Request,
) -> AsyncIterator[str]:
    """The log's events as they arrive (`read()` waits for the next ones, a heartbeat at
    most), each with `id:` = its number; stops once `ended` says nothing more will come
    (after sending what is left), when the client goes, or before the stream's time runs
    out.

    Reads check the reader's access again (every few seconds, see `EventCursor`). When one
    fails (the reader was removed from the workspace, the database is down) the status is
    long sent, so the stream ends with an `error` event carrying the problem and closes
    cleanly: an exception leaving here would break the chunked body instead."""
    try:
        async for chunk in _tail(read, ended, request):
            yield chunk
    except Exception as exc:  # noqa: BLE001 - every failure ends the stream as an event
        if not isinstance(exc, GuildstackError):
            logger.exception("event stream failed")
        yield frame("error", problem_of(exc, request_id_of(request)))


async def _tail(
    read: Callable[[], Awaitable[list[Event]]],
    ended: Callable[[list[Event]], Awaitable[bool]],
    request: Request,
) -> AsyncIterator[str]:
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    yield "retry: 2000\n\n"
    while time.monotonic() < deadline:
        items = await read()
        for event in items:
            data = {
                "id": event.seq,
                "type": event.type,
                "payload": dict(event.payload),
                "created_at": rfc3339(event.created_at),
            }
            yield frame(event.type, data, event.seq)
        if await ended(items):
            return
        if not items:
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
