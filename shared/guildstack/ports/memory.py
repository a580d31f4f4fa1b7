"""Memory ports: the embedder, the store (under the caller's RLS) and the hot cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from guildstack.domain.identity import Principal
from guildstack.domain.memory import Candidate, Collection, Document, Memory, MemoryScope
from guildstack.domain.paging import Page, PageRequest


class Embedder(Protocol):
    model_id: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector of `dimensions` floats per text."""
        ...


@dataclass(frozen=True)
class NewMemory:
    scope: MemoryScope
    collection: Collection
    content: str
    embedding: list[float]
    embedding_model: str
    metadata: dict[str, Any]
    document_id: UUID | None = None
    chunk_index: int | None = None


@dataclass(frozen=True)
class CandidateQuery:
    embedding: list[float]
    embedding_model: str
    text: str
    collections: tuple[Collection, ...] | None
    semantic_k: int  # nearest neighbours to take from the vector index
    text_k: int  # full-text matches to add


@dataclass(frozen=True)
class DocumentMessage:
    """The queue message that has a worker chunk and embed a document."""

    workspace_id: UUID
    document_id: UUID

    def body(self) -> str:
        return json.dumps(
            {
                "kind": "document",
                "workspace_id": str(self.workspace_id),
                "document_id": str(self.document_id),
            }
        )


@dataclass(frozen=True)
class PendingDocument:
    document: Document
    text: str


class MemoryStore(Protocol):
    async def add(
        self, actor: Principal, workspace_id: UUID, memories: Sequence[NewMemory]
    ) -> list[Memory]: ...

    async def list_memories(
        self,
        actor: Principal,
        workspace_id: UUID,
        collection: Collection | None,
        page: PageRequest,
    ) -> Page[Memory]: ...

    async def get(self, actor: Principal, workspace_id: UUID, memory_id: UUID) -> Memory:
        """`NotFound` unless the caller may see it."""
        ...

    async def delete(self, actor: Principal, workspace_id: UUID, memory_id: UUID) -> Memory:
        """The deleted memory; `NotFound` when the caller cannot see it, `Forbidden` when
        they see it but may not delete it."""
        ...

    async def feedback(
        self, actor: Principal, workspace_id: UUID, memory_id: UUID, value: int
    ) -> Memory: ...

    async def candidates(
        self, actor: Principal, workspace_id: UUID, query: CandidateQuery
    ) -> list[Candidate]:
        """Nearest memories by meaning merged with full-text matches, each with both its
        cosine similarity and its text rank; only what the caller may see."""
        ...

    async def touch(self, actor: Principal, workspace_id: UUID, memory_ids: Sequence[UUID]) -> None:
        """Count an access to each memory."""
        ...

    async def create_document(
        self, actor: Principal, workspace_id: UUID, title: str, text: str
    ) -> Document:
        """A `pending` document holding its text until a worker ingests it."""
        ...

    async def claim_document(self, message: DocumentMessage) -> PendingDocument | None:
        """Move it from `pending` (or a `processing` left for dead) to `processing`; None
        when it is ingested already or taken (as the system)."""
        ...

    async def release_document(self, document_id: UUID, error: str) -> None:
        """Back to `pending` after a failed attempt (as the system)."""
        ...

    async def stale_documents(self, older_than_seconds: int, limit: int) -> list[DocumentMessage]:
        """Documents pending for longer than that: their message may be lost."""
        ...

    async def documents(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Document]: ...

    async def finish_document(
        self, document_id: UUID, status: str, chunk_count: int, error: str | None = None
    ) -> None:
        """Record an ingestion's outcome (as the system); the held text is dropped."""
        ...


class SearchCache(Protocol):
    """Search results per user and query for an hour; a generation number per scope is
    part of every key, so bumping it invalidates every cached search of that scope."""

    async def generations(self, workspace_id: UUID, user_id: UUID) -> tuple[int, int]: ...

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def bump(self, workspace_id: UUID, user_id: UUID | None) -> None:
        """Invalidate the workspace's shared searches (user None) or one user's."""
        ...
