"""Chat over Server-Sent Events: `POST /chat/message` streams a reply, and
`GET /conversations/{id}/stream` follows a conversation's events (resumable).

A turn's work runs in a task of its own, apart from the response: a client that goes away
mid-reply stops receiving, not the turn, which completes and stores the reply (that
conversation's stream then shows it).
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.stream.sse import HEADERS, HEARTBEAT_SECONDS, frame, resume_point, tail
from functions.stream.tickets import ENDED_OR_STREAM
from guildstack.domain.errors import GuildstackError
from guildstack.domain.limits import MAX_BODY_TEXT_CHARS
from guildstack.domain.routing import routing_json
from guildstack.domain.runs import Event
from guildstack.domain.vocabulary import ConversationStatus
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.openapi import MODEL_CALL, event_stream
from guildstack.http.problems import problem_of, request_id_of
from guildstack.http.tickets import streamed
from guildstack.observability import logger

if TYPE_CHECKING:
    from guildstack.services.chat import Accepted, ChatTurns
    from guildstack.services.conversations import ConversationService

Turns = Annotated["Scoped[ChatTurns]", Depends(in_workspace(lambda c: c.chat))]
Conversations = Annotated[
    "Scoped[ConversationService]",
    Depends(streamed(lambda c: c.conversations, "conversation", "conversation_id")),
]
AgentCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")]

router = APIRouter()
# Turns still running after their client left; kept so the loop does not drop them.
_RUNNING: set[asyncio.Task[None]] = set()
_END = object()


class ChatMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Empty, NUL-carrying or over-long messages get the service's 422 naming the problem.
    content: Annotated[str, StringConstraints(max_length=MAX_BODY_TEXT_CHARS)]
    conversation_id: UUID | None = None
    # The agents to consult instead of letting the router choose.
    agents: Annotated[list[AgentCode], Field(max_length=12)] = Field(default_factory=list)


@router.post("/chat/message", responses={**event_stream(), **MODEL_CALL})
async def chat_message(body: ChatMessageRequest, request: Request, ws: Turns) -> StreamingResponse:
    """SSE: `meta` (accepted; then routing and memories), `token`s, then `done` or `error`.
    Refusals (no such conversation, role, budget, account limits, bad input) are a plain
    problem response before any byte of the stream."""
    accepted = await ws.service.accept(
        ws.principal, ws.workspace_id, body.content, body.conversation_id, body.agents
    )
    queue: asyncio.Queue[object] = asyncio.Queue()
    _spawn(_turn(ws, accepted, queue, request_id_of(request)))
    return StreamingResponse(_drain(queue), media_type="text/event-stream", headers=HEADERS)


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def _drain(queue: "asyncio.Queue[object]") -> AsyncIterator[str]:
    while (item := await queue.get()) is not _END:
        yield str(item)


async def _turn(
    ws: "Scoped[ChatTurns]",
    accepted: "Accepted",
    queue: "asyncio.Queue[object]",
    request_id: str,
) -> None:
    turns, actor = ws.service, ws.principal
    conversation_id, message_id = str(accepted.conversation.id), str(accepted.message.id)
    await queue.put(frame("meta", {"conversation_id": conversation_id, "message_id": message_id}))
    try:
        planned = await turns.plan(actor, accepted)
        routing = routing_json(planned.routing)
        await queue.put(
            frame(
                "meta",
                {
                    "conversation_id": conversation_id,
                    "routing": routing,
                    "memory_hits": list(planned.memory_hits),
                },
            )
        )

        async def on_delta(text: str) -> None:
            await queue.put(frame("token", {"text": text}))

        run = await turns.respond(actor, accepted, planned, on_delta)
        reply = await turns.reply(actor, accepted, run.id)
        if reply.message is not None:
            usage = dict(reply.message.usage or {})
            await queue.put(
                frame(
                    "done",
                    {
                        "conversation_id": conversation_id,
                        "message_id": str(reply.message.id),
                        "run_id": str(run.id),
                        "usage": usage,
                        "cost_usd": usage.get("cost_usd", 0.0),
                    },
                )
            )
        else:
            detail = reply.run.error or f"The reply is not ready (the turn is {reply.run.status})."
            await queue.put(
                frame(
                    "error",
                    {
                        "status": 502,
                        "title": "Reply failed",
                        "detail": detail,
                        "request_id": request_id,
                        "run_id": str(run.id),
                    },
                )  # fmt: skip
            )
    except Exception as exc:  # noqa: BLE001 - every failure ends the stream as an `error` event
        if not isinstance(exc, GuildstackError):
            logger.exception("chat turn failed", extra={"request_id": request_id})
        await queue.put(frame("error", problem_of(exc, request_id)))
    finally:
        await queue.put(_END)


@router.get(
    "/conversations/{conversation_id}/stream", response_model=None, responses=ENDED_OR_STREAM
)
async def stream_conversation(
    conversation_id: UUID,
    request: Request,
    ws: Conversations,
    after: Annotated[int | None, Query(ge=0)] = None,
    ticket: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse | Response:
    """The conversation's events as SSE (`id:` = event number; resume with Last-Event-ID),
    by bearer token and `X-Workspace-Id` or by `?ticket=`. A completed conversation's
    stream sends what is left and closes; 204 when nothing is."""
    start = resume_point(request.headers.get("last-event-id"), after)
    conversations = ws.service
    conversation = await conversations.get(ws.principal, ws.workspace_id, conversation_id)
    wait = HEARTBEAT_SECONDS
    if conversation.status is ConversationStatus.COMPLETED:
        wait = 0
        left = await conversations.events(
            ws.principal, ws.workspace_id, conversation_id, after=start
        )
        if not left.items:
            return Response(status_code=204)

    cursor = conversations.follow(ws.principal, ws.workspace_id, conversation_id, after=start)

    async def read() -> list[Event]:
        return await cursor.next(wait)

    async def ended(items: list[Event]) -> bool:
        if items:
            return False
        conversation = await conversations.get(ws.principal, ws.workspace_id, conversation_id)
        return conversation.status is ConversationStatus.COMPLETED

    return StreamingResponse(
        tail(read, ended, request), media_type="text/event-stream", headers=HEADERS
    )
