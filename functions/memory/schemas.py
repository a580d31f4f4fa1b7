"""Request and response models of the Memory function (the HTTP API's Memory routes)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from guildstack.domain.limits import (
    MAX_BODY_TEXT_CHARS,
    MAX_DOCUMENT_TITLE_CHARS,
    MAX_EMBEDDING_DIMENSIONS,
    MAX_METADATA_KEYS,
    MAX_SEARCH_COLLECTIONS,
)
from guildstack.domain.vocabulary import Collection, MemoryScope

if TYPE_CHECKING:
    from guildstack.domain.memory import Document, Memory, SearchHit

# Content limits are the service's (a 422 naming the field); these only bound the body.
Text = Annotated[str, Field(max_length=MAX_BODY_TEXT_CHARS)]


class RememberRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Text
    collection: Collection
    scope: MemoryScope = MemoryScope.USER
    metadata: Annotated[dict[str, Any], Field(max_length=MAX_METADATA_KEYS)] = Field(
        default_factory=dict
    )
    # A vector the client computed with this deployment's embedder (optional); it must
    # name that model in `embedding_model` (see MemoryService.remember).
    embedding: Annotated[list[float], Field(max_length=MAX_EMBEDDING_DIMENSIONS)] | None = None
    embedding_model: Annotated[str, Field(max_length=200)] | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text
    collections: Annotated[list[Collection], Field(max_length=MAX_SEARCH_COLLECTIONS)] | None = None
    limit: int = 10


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Literal[1, -1]


class DocumentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=MAX_DOCUMENT_TITLE_CHARS)]
    text: Text


class MemoryResponse(BaseModel):
    id: str
    collection: str
    scope: str
    content: str
    metadata: dict[str, Any]
    embedding_model: str
    confidence: float
    feedback_score: int
    access_count: int
    created_at: datetime
    last_accessed_at: datetime | None

    @classmethod
    def of(cls, memory: "Memory") -> Self:
        return cls(
            id=str(memory.id),
            collection=memory.collection.value,
            scope=memory.scope.value,
            content=memory.content,
            metadata=dict(memory.metadata),
            embedding_model=memory.embedding_model,
            confidence=memory.confidence,
            feedback_score=memory.feedback_score,
            access_count=memory.access_count,
            created_at=memory.created_at,
            last_accessed_at=memory.last_accessed_at,
        )


class HitResponse(BaseModel):
    memory: MemoryResponse
    score: float
    parts: dict[str, float]

    @classmethod
    def of(cls, hit: "SearchHit") -> Self:
        p = hit.parts
        return cls(
            memory=MemoryResponse.of(hit.memory),
            score=hit.score,
            parts={
                "semantic": p.semantic,
                "feedback": p.feedback,
                "recency": p.recency,
                "frequency": p.frequency,
                "text": p.text,
            },
        )


class SearchResponse(BaseModel):
    hits: list[HitResponse]


class DocumentResponse(BaseModel):
    id: str
    title: str
    status: str
    chunk_count: int
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, document: "Document") -> Self:
        return cls(
            id=str(document.id),
            title=document.title,
            status=document.status.value,
            chunk_count=document.chunk_count,
            error=document.error,
            created_at=document.created_at,
        )
