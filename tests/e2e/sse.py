"""Reading Server-Sent Events as a client does: numbered events (`id:`, `event:`,
`data:`), until the stream ends or the caller has seen enough."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

# How long a test reads a stream before it gives up (a discussion takes a while).
STREAM_SECONDS = 120


async def read_events(
    api: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    until: Callable[[dict[str, Any]], bool] | None = None,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """Events `{id, event, data}` of a GET stream, up to the first that `until` accepts
    (its `data`), after `stop_after` events (the client drops the connection), or to the
    stream's end."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    headers = {**headers, "Accept": "text/event-stream"}
    async with api.stream("GET", url, headers=headers, timeout=STREAM_SECONDS) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "id" in current:
                events.append(current)
                current = {}
                if until is not None and until(events[-1]["data"]):
                    break
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events
