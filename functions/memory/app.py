"""MemoryFunction: memories and documents, searched by meaning and words."""

from typing import TYPE_CHECKING, Annotated
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
from guildstack.domain.vocabulary import Collection
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.pagination import ListResponse, list_of, page_request

if TYPE_CHECKING:
    from guildstack.services.memory import MemoryService

Memory = Annotated["Scoped[MemoryService]", Depends(in_workspace(lambda c: c.memory))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post("/memory", status_code=201)
async def remember(body: RememberRequest, ws: Memory, response: Response) -> MemoryResponse:
    memory = await ws.service.remember(
        ws.principal,
        ws.workspace_id,
        content=body.content,
        collection=body.collection,
        scope=body.scope,
        metadata=body.metadata,
        embedding=body.embedding,
        embedding_model=body.embedding_model,
    )
    response.headers["Location"] = f"/memory/{memory.id}"
    return MemoryResponse.of(memory)


@router.get("/memory")
async def list_memories(
    ws: Memory, paging: Paging, collection: Collection | None = None
) -> ListResponse[MemoryResponse]:
    page = await ws.service.list_memories(ws.principal, ws.workspace_id, collection, paging)
    return list_of(page, MemoryResponse.of)


@router.delete("/memory/{memory_id}", status_code=204)
async def forget(memory_id: UUID, ws: Memory) -> Response:
    await ws.service.forget(ws.principal, ws.workspace_id, memory_id)
    return Response(status_code=204)


@router.post("/memory/search")
async def search(body: SearchRequest, ws: Memory) -> SearchResponse:
    hits = await ws.service.search(
        ws.principal, ws.workspace_id, body.query, collections=body.collections, limit=body.limit
    )
    return SearchResponse(hits=[HitResponse.of(h) for h in hits])


@router.post("/memory/{memory_id}/feedback")
async def feedback(memory_id: UUID, body: FeedbackRequest, ws: Memory) -> MemoryResponse:
    memory = await ws.service.feedback(ws.principal, ws.workspace_id, memory_id, body.value)
    return MemoryResponse.of(memory)


@router.post("/memory/documents", status_code=202)
async def add_document(body: DocumentRequest, ws: Memory) -> DocumentResponse:
    document = await ws.service.add_document(ws.principal, ws.workspace_id, body.title, body.text)
    return DocumentResponse.of(document)


@router.get("/memory/documents")
async def list_documents(ws: Memory, paging: Paging) -> ListResponse[DocumentResponse]:
    page = await ws.service.documents(ws.principal, ws.workspace_id, paging)
    return list_of(page, DocumentResponse.of)


def create(container: Container) -> FastAPI:
    """The Memory function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Memory", routers=[router])
    app.state.container = container
    return app


app = create(build())
