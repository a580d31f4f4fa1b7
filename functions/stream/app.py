"""StreamFunction: run events as Server-Sent Events (the HTTP API's Stream routes).

Runs under uvicorn behind the Lambda Web Adapter and a `RESPONSE_STREAM` function URL (an
HTTP API cannot stream). Each event goes out with `id:` = its number in the run, so a client
that drops reconnects with `Last-Event-ID` and misses nothing, and sees nothing twice.
"""

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from guildstack.bootstrap import Container, build
from guildstack.domain.errors import BadRequest
from guildstack.domain.vocabulary import EventType
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace

if TYPE_CHECKING:
    from guildstack.services.runs import RunService

Runs = Annotated["Scoped[RunService]", Depends(in_workspace(lambda c: c.runs))]

# A function URL response may stream for up to 15 minutes; end cleanly before that and
# let the client resume from the last id.
MAX_STREAM_SECONDS = 14 * 60
HEARTBEAT_SECONDS = 15

router = APIRouter()


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


@router.get("/runs/{run_id}/stream")
async def stream_run(
    run_id: UUID,
    request: Request,
    ws: Runs,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    start = resume_point(request.headers.get("last-event-id"), after)
    # A run outside the caller's workspaces is a 404 before any byte is streamed.
    await ws.service.get(ws.principal, ws.workspace_id, run_id)
    return StreamingResponse(
        _events(ws, run_id, start, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    ws: "Scoped[RunService]", run_id: UUID, after: int, request: Request
) -> AsyncIterator[str]:
    runs = ws.service
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    yield "retry: 2000\n\n"
    while time.monotonic() < deadline:
        page = await runs.events(
            ws.principal, ws.workspace_id, run_id, after=after, wait_seconds=HEARTBEAT_SECONDS
        )
        for event in page.items:
            data = {
                "id": event.seq,
                "type": event.type,
                "payload": dict(event.payload),
                "created_at": event.created_at.isoformat(),
            }
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(data)}\n\n"
            after = event.seq
        if page.items and page.items[-1].type == EventType.RUN_FINISHED:
            return  # nothing follows unless someone retries a step: the client reconnects
        if not page.items:
            run = await runs.get(ws.principal, ws.workspace_id, run_id)
            if run.status.finished:
                return
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return


def create(container: Container) -> FastAPI:
    """The Stream function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Stream", routers=[router])
    app.state.container = container
    return app


app = create(build())
