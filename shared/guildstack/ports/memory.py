"""Memory ports: the embedder, the repositories (bound to a unit of work) and the hot cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from guildstack.domain.jobs import DocumentJob
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
class PendingDocument:
    document: Document
    text: str


class MemoryRepository(Protocol):
    async def add(
        self, workspace_id: UUID, owner_id: UUID, memories: Sequence[NewMemory]
    ) -> list[Memory]:
        """Store memories; user-scope ones belong to `owner_id` (the actor, under RLS)."""
        ...

    async def list_memories(
        self, workspace_id: UUID, collection: Collection | None, page: PageRequest
    ) -> Page[Memory]: ...

    async def get(self, workspace_id: UUID, memory_id: UUID) -> Memory:
        """`NotFound` unless the caller may see it."""
        ...

    async def delete(self, workspace_id: UUID, memory_id: UUID) -> bool:
        """False when the caller sees it but may not delete it."""
        ...

    async def feedback(self, workspace_id: UUID, memory_id: UUID, value: int) -> Memory:
        """Record the actor's vote (1 or -1), replacing their earlier one; the memory with its
        score, the sum of its votes. `NotFound` unless the actor may see it."""
        ...

    async def candidates(self, workspace_id: UUID, query: CandidateQuery) -> list[Candidate]:
        """Nearest memories by meaning merged with full-text matches, each with both its
        cosine similarity and its text rank; only what the caller may see."""
        ...

    async def touch(self, workspace_id: UUID, memory_ids: Sequence[UUID]) -> None:
        """Count an access to each memory, once per time it is named (a system
        transaction: members cannot)."""
        ...


class DocumentRepository(Protocol):
    async def create(
        self,
        workspace_id: UUID,
        title: str,
        text: str,
        *,
        owner_id: UUID | None = None,
        collection: Collection = Collection.DOCUMENTS,
    ) -> Document:
        """A `pending` document holding its text until a worker ingests it into `collection`;
        the actor's, or (in a system transaction) `owner_id`'s."""
        ...

    async def list_documents(self, workspace_id: UUID, page: PageRequest) -> Page[Document]:
        """Uploaded documents (the `documents` collection), newest first."""
        ...

    async def lock(self, workspace_id: UUID, document_id: UUID) -> DocumentJob | None:
        """The document's ingestion job under its row lock; None when there is none."""
        ...

    async def save(self, job: DocumentJob, *, chunk_count: int | None = None) -> None:
        """Write the job back; the held text is dropped once the job has ended."""
        ...

    async def pending(self, document_id: UUID) -> PendingDocument:
        """The document and the text it holds for ingestion."""
        ...

    async def stale(self, older_than_seconds: int, limit: int) -> list[DocumentJob]:
        """Documents pending longer than that (their message may be lost) and ones whose
        worker's lease ran out."""
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

    async def count_query(self, workspace_id: UUID, entry: str) -> None:
        """Count a search (`entry` names who asked what) among the workspace's recent ones
        (a day; only the most frequent few hundred are kept)."""
        ...

    async def frequent_queries(self, workspace_id: UUID, limit: int) -> list[str]:
        """The workspace's most frequent recent searches, most frequent first."""
        ...
