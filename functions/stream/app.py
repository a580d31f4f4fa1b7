"""StreamFunction: Server-Sent Events — run and conversation events, and chat replies.

Runs under uvicorn behind the Lambda Web Adapter and a `RESPONSE_STREAM` function URL (an
HTTP API cannot stream). Each event goes out with `id:` = its number in the run, so a client
that drops reconnects with `Last-Event-ID` and misses nothing, and sees nothing twice.
"""

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse

from functions.stream.chat import router as chat_router
from functions.stream.sse import HEADERS, HEARTBEAT_SECONDS, resume_point, tail
from functions.stream.tickets import ENDED_OR_STREAM
from guildstack.bootstrap import Container, build
from guildstack.domain.runs import Event
from guildstack.domain.vocabulary import EventType
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped
from guildstack.http.tickets import streamed

if TYPE_CHECKING:
    from guildstack.services.runs import RunService

Runs = Annotated["Scoped[RunService]", Depends(streamed(lambda c: c.runs, "run", "run_id"))]

router = APIRouter()


@router.get("/runs/{run_id}/stream", response_model=None, responses=ENDED_OR_STREAM)
async def stream_run(
    run_id: UUID,
    request: Request,
    ws: Runs,
    after: Annotated[int | None, Query(ge=0)] = None,
    ticket: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse | Response:
    """The run's events as SSE. Authenticated by bearer token and `X-Workspace-Id`, or by
    `?ticket=`. A finished run's stream sends what is left and closes; 204 when nothing is."""
    start = resume_point(request.headers.get("last-event-id"), after)
    # A run outside the caller's workspaces is a 404 before any byte is streamed.
    run = await ws.service.get(ws.principal, ws.workspace_id, run_id)
    wait = HEARTBEAT_SECONDS
    if run.status.finished:
        wait = 0
        left = await ws.service.events(ws.principal, ws.workspace_id, run_id, after=start)
        if not left.items:
            return Response(status_code=204)
    return StreamingResponse(
        _events(ws, run_id, start, request, wait), media_type="text/event-stream", headers=HEADERS
    )


async def _events(
    ws: "Scoped[RunService]", run_id: UUID, after: int, request: Request, wait: float
) -> AsyncIterator[str]:
    runs = ws.service
    cursor = runs.follow(ws.principal, ws.workspace_id, run_id, after=after)

    async def read() -> list[Event]:
        return await cursor.next(wait)

    async def ended(items: list[Event]) -> bool:
        # After `run.finished` nothing follows unless someone retries a step: the client
        # reconnects then.
        if items:
            return items[-1].type == EventType.RUN_FINISHED
        return (await runs.get(ws.principal, ws.workspace_id, run_id)).status.finished

    async for chunk in tail(read, ended, request):
        yield chunk


def create(container: Container) -> FastAPI:
    """The Stream function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Stream", routers=[router, chat_router])
    app.state.container = container
    return app


app = create(build())
