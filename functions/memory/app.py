"""MemoryFunction: memories and documents, searched by meaning and words (API.md)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Response

from functions.memory.schemas import (
    DocumentRequest,
    DocumentResponse,
    FeedbackRequest,
    HitResponse,
    MemoryResponse,
    RememberRequest,
    SearchRequest,
    SearchResponse,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.paging import PageRequest
from guildstack.domain.vocabulary import Collection, Role
from guildstack.http.app import create_app
from guildstack.http.auth import WorkspaceContext, workspace_member
from guildstack.http.pagination import ListResponse, encode_cursor, page_request

Member = Annotated[WorkspaceContext, Depends(workspace_member(Role.VIEWER))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post("/memory", status_code=201)
async def remember(body: RememberRequest, ws: Member, response: Response) -> MemoryResponse:
    memory = await ws.services.memory.remember(
        ws.principal,
        ws.workspace_id,
        ws.role,
        content=body.content,
        collection=body.collection,
        scope=body.scope,
        metadata=body.metadata,
        embedding=body.embedding,
    )
    response.headers["Location"] = f"/memory/{memory.id}"
    return MemoryResponse.of(memory)


@router.get("/memory")
async def list_memories(
    ws: Member, paging: Paging, collection: Collection | None = None
) -> ListResponse[MemoryResponse]:
    page = await ws.services.memory.list_memories(ws.principal, ws.workspace_id, collection, paging)
    return ListResponse(
        items=[MemoryResponse.of(m) for m in page.items],
        next_cursor=encode_cursor(page.next_after),
    )


@router.delete("/memory/{memory_id}", status_code=204)
async def forget(memory_id: UUID, ws: Member) -> Response:
    await ws.services.memory.forget(ws.principal, ws.workspace_id, memory_id)
    return Response(status_code=204)


@router.post("/memory/search")
async def search(body: SearchRequest, ws: Member) -> SearchResponse:
    hits = await ws.services.memory.search(
        ws.principal, ws.workspace_id, body.query, collections=body.collections, limit=body.limit
    )
    return SearchResponse(hits=[HitResponse.of(h) for h in hits])


@router.post("/memory/{memory_id}/feedback")
async def feedback(memory_id: UUID, body: FeedbackRequest, ws: Member) -> MemoryResponse:
    memory = await ws.services.memory.feedback(ws.principal, ws.workspace_id, memory_id, body.value)
    return MemoryResponse.of(memory)


@router.post("/memory/documents", status_code=202)
async def add_document(body: DocumentRequest, ws: Member) -> DocumentResponse:
    document = await ws.services.memory.add_document(
        ws.principal, ws.workspace_id, body.title, body.text
    )
    return DocumentResponse.of(document)


@router.get("/memory/documents")
async def list_documents(ws: Member, paging: Paging) -> ListResponse[DocumentResponse]:
    page = await ws.services.memory.documents(ws.principal, ws.workspace_id, paging)
    return ListResponse(
        items=[DocumentResponse.of(d) for d in page.items],
        next_cursor=encode_cursor(page.next_after),
    )


def create(container: Container) -> FastAPI:
    """The Memory function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Memory", routers=[router])
    app.state.container = container
    return app


app = create(build())
