"""ChatFunction: conversations and their messages (the HTTP API's Chat routes). Replies
stream from the Stream function (`POST /chat/message`)."""

from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Response

from functions.chat.schemas import (
    ConversationResponse,
    CreateConversationRequest,
    MessageResponse,
    MessagesResponse,
    PostMessageRequest,
    StartDiscussionRequest,
    StartedDiscussionResponse,
    UpdateConversationRequest,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.paging import PageRequest
from guildstack.domain.vocabulary import ConversationMode, ConversationStatus
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.openapi import MODEL_CALL
from guildstack.http.pagination import ListResponse, list_of, page_request
from guildstack.http.tickets import StreamTicketResponse
from guildstack.observability import metrics

if TYPE_CHECKING:
    from guildstack.services.conversations import ConversationService
    from guildstack.services.discussions import DiscussionService
    from guildstack.services.stream_access import StreamAccess

Conversations = Annotated[
    "Scoped[ConversationService]", Depends(in_workspace(lambda c: c.conversations))
]
Discussions = Annotated["Scoped[DiscussionService]", Depends(in_workspace(lambda c: c.discussions))]
Access = Annotated["Scoped[StreamAccess]", Depends(in_workspace(lambda c: c.stream_access))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post("/conversations", status_code=201)
async def create_conversation(
    body: CreateConversationRequest, ws: Conversations, response: Response
) -> ConversationResponse:
    conversation = await ws.service.create(
        ws.principal,
        ws.workspace_id,
        mode=body.mode,
        title=body.title,
        goal=body.goal,
        agents=body.agents,
        shared=body.shared,
        settings=body.settings,
    )
    response.headers["Location"] = f"/conversations/{conversation.id}"
    metrics.add_metric(name="ConversationsStarted", unit="Count", value=1)
    return ConversationResponse.of(conversation)


@router.get("/conversations")
async def list_conversations(
    ws: Conversations,
    paging: Paging,
    status: ConversationStatus | None = None,
    mode: ConversationMode | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> ListResponse[ConversationResponse]:
    page = await ws.service.list_conversations(
        ws.principal, ws.workspace_id, paging, status=status, mode=mode, q=q
    )
    return list_of(page, ConversationResponse.of)


@router.post("/conversations/{conversation_id}/stream-ticket", status_code=201)
async def conversation_stream_ticket(conversation_id: UUID, ws: Access) -> StreamTicketResponse:
    """A ticket for `GET /conversations/{id}/stream?ticket=...` on the Stream function (for
    an `EventSource`): that stream only, for a minute."""
    ticket = await ws.service.conversation_ticket(ws.principal, ws.workspace_id, conversation_id)
    return StreamTicketResponse.of(ticket)


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: UUID, ws: Conversations) -> ConversationResponse:
    conversation = await ws.service.get(ws.principal, ws.workspace_id, conversation_id)
    return ConversationResponse.of(conversation)


@router.patch("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: UUID, body: UpdateConversationRequest, ws: Conversations
) -> ConversationResponse:
    conversation = await ws.service.update(
        ws.principal,
        ws.workspace_id,
        conversation_id,
        title=body.title,
        status=body.status,
        shared=body.shared,
    )
    return ConversationResponse.of(conversation)


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: UUID, ws: Conversations) -> Response:
    await ws.service.delete(ws.principal, ws.workspace_id, conversation_id)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/messages", status_code=201, responses=MODEL_CALL)
async def post_message(
    conversation_id: UUID, body: PostMessageRequest, ws: Conversations, response: Response
) -> MessageResponse:
    message = await ws.service.post(ws.principal, ws.workspace_id, conversation_id, body.content)
    response.headers["Location"] = (
        f"/conversations/{conversation_id}/messages?after={message.seq - 1}"
    )
    return MessageResponse.of(message)


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: UUID,
    ws: Conversations,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> MessagesResponse:
    messages = await ws.service.messages(
        ws.principal, ws.workspace_id, conversation_id, after=after, limit=limit
    )
    more = len(messages) == limit
    return MessagesResponse(
        items=[MessageResponse.of(m) for m in messages],
        next_cursor=str(messages[-1].seq) if more else None,
    )


@router.get("/conversations/{conversation_id}/messages/pending")
async def pending_messages(
    conversation_id: UUID, ws: Conversations
) -> ListResponse[MessageResponse]:
    pending = await ws.service.pending(ws.principal, ws.workspace_id, conversation_id)
    return ListResponse(items=[MessageResponse.of(m) for m in pending], next_cursor=None)


@router.get("/conversations/{conversation_id}/export", response_class=Response)
async def export_conversation(
    conversation_id: UUID,
    ws: Conversations,
    format: Literal["json", "markdown"] = "json",  # noqa: A002 - the query parameter's name
) -> Response:
    media_type, body = await ws.service.export(
        ws.principal, ws.workspace_id, conversation_id, format
    )
    extension = "md" if format == "markdown" else "json"
    disposition = f'attachment; filename="conversation-{conversation_id}.{extension}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


@router.post("/conversations/{conversation_id}/start", status_code=202, responses=MODEL_CALL)
async def start_discussion(
    conversation_id: UUID,
    ws: Discussions,
    response: Response,
    body: StartDiscussionRequest | None = None,
) -> StartedDiscussionResponse:
    """A discussion's run: its turns are steps on the durable engine (follow them on the
    conversation's stream)."""
    budget = body.budget_usd if body else None
    run = await ws.service.start(ws.principal, ws.workspace_id, conversation_id, budget)
    response.headers["Location"] = f"/runs/{run.id}"
    metrics.add_metric(name="DiscussionsStarted", unit="Count", value=1)
    return StartedDiscussionResponse(run_id=str(run.id), conversation_id=str(conversation_id))


@router.get("/conversations/{conversation_id}/analytics")
async def discussion_analytics(conversation_id: UUID, ws: Discussions) -> dict[str, Any]:
    """Turns, tokens and cost per persona, rounds, votes, time to consensus."""
    return await ws.service.analytics(ws.principal, ws.workspace_id, conversation_id)


def create(container: Container) -> FastAPI:
    """The Chat function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Chat", routers=[router])
    app.state.container = container
    return app


app = create(build())
